using Google.Protobuf;
using Kong.PluginServer.Testing;
using Resilience.Tests.Fuzz;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.KongSide;

/// <summary>
/// Faults on the Kong side against the binary: connections dropped at every step of an event, clients that never
/// read, thousands of connect-and-close probes. Well-behaved traffic keeps getting exact answers meanwhile, and
/// afterwards the server's connections, events in flight, fds, threads and RSS come back (from /proc and the
/// server's own gauges).
/// </summary>
public sealed class DropAndProbeTests(ITestOutputHelper output)
{
    private const int FdSlack = 6;
    private const long MaxWorkerGrowth = 40;
    private const long RssBoundKiB = 192 * 1024; // the GC keeps what it grew to; the long fuzz run shows the plateau

    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private sealed class Setup(BinaryRig rig, Metrics metrics, ProcSample baseline, int instanceId, string config) : IAsyncDisposable
    {
        public BinaryRig Rig => rig;
        public Metrics Metrics => metrics;
        public ProcSample Baseline => baseline;
        public int InstanceId => instanceId;
        public string Config => config;

        public async ValueTask DisposeAsync()
        {
            metrics.Dispose();
            await rig.DisposeAsync();
        }
    }

    private static async Task<Setup> StartAsync(KongProtocol protocol)
    {
        var metrics = Metrics.OnFreePort();
        var rig = await BinaryRig.StartAsync(protocol, "error", metrics.Args);
        var config = rig.ConfigJson();
        await using (var warm = rig.Simulator(workers: 2))
        {
            var traffic = new GoodTraffic(warm, warm.AddPlugin(config), rig.Minter);
            await traffic.RunCountAsync(loops: 4, perLoop: 8);
            traffic.AssertClean();
        }
        int id = await FuzzSetup.StartInstanceAsync(rig, rig.ConfigJson(c => c["__seq__"] = 77));
        await metrics.UntilAsync("pluginserver_connections", v => v == 0, "the warm-up connections closed");
        await Task.Delay(100);
        return new Setup(rig, metrics, rig.Sample(), id, config);
    }

    /// <summary>After a scenario: the server is alive, holds no connection, and its fds/threads/RSS are back near the baseline.</summary>
    private async Task AssertRecoveredAsync(Setup s, string scenario)
    {
        Assert.False(s.Rig.Host.HasExited, $"the server died ({scenario}); stderr:\n{s.Rig.Host.Stderr}");
        await s.Metrics.UntilAsync("pluginserver_connections", v => v == 0, "every connection is closed on the server side");
        var after = await s.Rig.SettleAsync(s.Baseline.Fds + FdSlack, scenario);
        // parked worker threads serve the connections: their number follows the peak concurrency, not the connection count
        Assert.True(after.Threads <= s.Baseline.Threads + MaxWorkerGrowth, $"threads grew from {s.Baseline} to {after}");
        output.WriteLine($"{scenario}: baseline {s.Baseline}; after {after}");
        Assert.True(after.RssKiB - s.Baseline.RssKiB <= RssBoundKiB, $"RSS grew from {s.Baseline} to {after}");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Connections_dropped_at_every_step_of_an_event_leave_nothing_behind(KongProtocol protocol)
    {
        await using var s = await StartAsync(protocol);
        var rig = s.Rig;
        const int Repeats = 25;
        string valid = rig.Minter.Mint(), expired = rig.Minter.Mint(b => b.IssuedAt(DateTimeOffset.UtcNow.AddHours(-3), TimeSpan.FromHours(1)));

        await using var kong = rig.Simulator(workers: 2);
        var traffic = new GoodTraffic(kong, kong.AddPlugin(s.Config), rig.Minter);
        using var stop = new CancellationTokenSource();
        var good = traffic.RunAsync(loops: 3, stop.Token, minPerLoop: 10);

        var points = Enum.GetValues<DropPoint>();
        int completed = 0, lingering = 0, seq = 100;
        var errors = new List<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, points.Length * Repeats), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
        {
            var point = points[i % points.Length];
            string token = KongScripts.NeedsBadToken(point) ? expired : valid;
            try
            {
                bool done = protocol == KongProtocol.ProtoBuf
                    ? await KongScripts.PbEventAsync(rig.Socket, s.InstanceId, token, point, Interlocked.Increment(ref seq))
                    : await KongScripts.MpEventAsync(rig.Socket, s.InstanceId, token, point, (uint)Interlocked.Increment(ref seq) * 1000);
                if (done) Interlocked.Increment(ref completed);
                // MsgPack: once the server answered a call of the event, only Kong's next Step (on any connection) or the
                // 90 s sweep ends it; a dropped connection cannot tell the server that Kong gave up
                if (protocol == KongProtocol.MsgPack && point is >= DropPoint.AfterHandleEvent and not DropPoint.AfterEventEnd and not DropPoint.Never and not DropPoint.AfterExitRead)
                    Interlocked.Increment(ref lingering);
            }
            catch (Exception e) when (e is InvalidDataException or TimeoutException)
            {
                lock (errors) errors.Add($"{point}: {e.Message}");
            }
        });
        stop.Cancel();
        await good;

        Assert.Empty(errors);
        // the controls (Never) ran the whole event; on MsgPack so did AfterEventEnd ("ret" read, then the drop)
        Assert.Equal(Repeats * (protocol == KongProtocol.ProtoBuf ? 1 : 2), completed);
        output.WriteLine($"{protocol}: {points.Length * Repeats} scripted events, {completed} completed; good traffic: {traffic.Summary()}");
        traffic.AssertClean();
        await kong.DisposeAsync();
        await AssertRecoveredAsync(s, $"{protocol} drops");
        double inFlight = await s.Metrics.InFlightAsync();
        output.WriteLine($"events in flight after the drops: {inFlight} (abandoned MsgPack events awaiting Kong's next Step: at most {lingering})");
        if (protocol == KongProtocol.ProtoBuf) Assert.Equal(0, inFlight);
        else Assert.InRange(inFlight, 0, lingering);

        // the server is as good as new
        await using var after = rig.Simulator();
        var check = new GoodTraffic(after, after.AddPlugin(s.Config), rig.Minter);
        await check.RunCountAsync(loops: 2, perLoop: 6);
        check.AssertClean();
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Clients_that_never_read_do_not_block_other_connections(KongProtocol protocol)
    {
        await using var s = await StartAsync(protocol);
        var rig = s.Rig;
        const int Stalled = 16;

        // each stalled client pipelines far more requests than the socket buffers hold and never reads the answers:
        // the server's thread for that connection blocks in send, and only that one
        var stalled = new List<RawConn>();
        var writes = new List<Task>();
        for (int i = 0; i < Stalled; i++)
        {
            var c = await RawConn.ConnectAsync(rig.Socket);
            stalled.Add(c);
            writes.Add(c.SendAsync(Pipelined(protocol, s.InstanceId, 150_000)).ContinueWith(_ => { }, TaskScheduler.Default));
        }
        await s.Metrics.UntilAsync("pluginserver_connections", v => v >= Stalled, "the stalled clients are connected");
        await Task.Delay(500); // let the server fill their buffers

        await using (var kong = rig.Simulator(workers: 2))
        {
            var traffic = new GoodTraffic(kong, kong.AddPlugin(s.Config), rig.Minter);
            await traffic.RunCountAsync(loops: 4, perLoop: 25);
            output.WriteLine($"{protocol}: with {Stalled} clients that never read: {traffic.Summary()}");
            traffic.AssertClean();
        }
        Assert.False(rig.Host.HasExited);

        foreach (var c in stalled) c.Dispose();
        await Task.WhenAll(writes).Within();
        await AssertRecoveredAsync(s, $"{protocol} stalled readers");
    }

    private static byte[] Pipelined(KongProtocol protocol, int instanceId, int count)
    {
        var one = protocol == KongProtocol.ProtoBuf
            ? PbWire.Frame(new Kong.PluginServer.Protocol.ProtoBuf.Messages.RpcCall { Sequence = 5, CmdGetInstanceStatus = new() { InstanceId = instanceId } }.ToByteArray())
            : MpWire.Request(5, "plugin.GetStatus", 0).ToArray();
        var all = new byte[one.Length * count];
        for (int i = 0; i < count; i++) one.CopyTo(all, i * one.Length);
        return all;
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Thousands_of_connect_and_close_probes_leak_nothing(KongProtocol protocol)
    {
        await using var s = await StartAsync(protocol);
        var rig = s.Rig;
        const int Rounds = 2, ProbesPerRound = 2000;

        await using var kong = rig.Simulator(workers: 2);
        var traffic = new GoodTraffic(kong, kong.AddPlugin(s.Config), rig.Minter);
        using var stop = new CancellationTokenSource();
        var good = traffic.RunAsync(loops: 2, stop.Token, minPerLoop: 10);

        // Probes close at once (Kong 3.1-3.4's readiness probe), or half-close / send a byte or a header and wait for the
        // server's close. The waiting ones pace the run: a client that only connects and closes outruns the accept loop
        // (about 10k connections/s here) and overflows the listen backlog (1024), which Kong would see as EAGAIN.
        int backlogFull = 0;
        var samples = new List<ProcSample>();
        for (int round = 0; round < Rounds; round++)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, ProbesPerRound), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
            {
                RawConn c;
                while (true)
                {
                    try { c = await RawConn.ConnectAsync(rig.Socket); break; }
                    catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.WouldBlock || e.SocketErrorCode == System.Net.Sockets.SocketError.TryAgain)
                    {
                        Interlocked.Increment(ref backlogFull);
                        await Task.Delay(5);
                    }
                }
                using (c)
                {
                    switch (i % 4)
                    {
                        case 0: return;                                     // connect, close
                        case 1: break;                                      // EOF only
                        case 2: await c.SendAsync(new byte[] { (byte)i }); break; // one byte
                        default: await c.SendAsync(protocol == KongProtocol.ProtoBuf ? PbWire.Le(10) : [0x94, 0x00]); break; // a truncated request
                    }
                    c.HalfClose();
                    Assert.True(await c.WaitForCloseAsync(), "the server kept a probe open after its EOF");
                }
            });
            await s.Metrics.UntilAsync("pluginserver_connections", v => v <= 4, "the probes are closed");
            samples.Add(s.Rig.Sample());
        }
        stop.Cancel();
        await good;
        output.WriteLine($"{protocol}: {Rounds * ProbesPerRound} probes ({backlogFull} connects retried on a full backlog); after each round: {string.Join(" / ", samples)}; good traffic: {traffic.Summary()}");
        traffic.AssertClean();
        await kong.DisposeAsync();
        await AssertRecoveredAsync(s, $"{protocol} probes");
        Assert.Equal(0, await s.Metrics.InFlightAsync());
        // the first thousands of threads grow RSS once (thread stacks cached by libc, the GC's budget); then it is flat
        Assert.True(samples[^1].RssKiB - samples[0].RssKiB <= 32 * 1024, $"RSS kept growing: {string.Join(" / ", samples)}");
    }
}
