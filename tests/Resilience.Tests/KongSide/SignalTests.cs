using Google.Protobuf;
using System.Collections.Concurrent;
using System.Text;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using Resilience.Tests.Fuzz;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.KongSide;

/// <summary>
/// SIGKILL and restart while Kong keeps sending (Kong's replay recovers; never a wrong answer), and SIGTERM with
/// events in flight (they finish, nothing new starts, exit 0, the socket is removed).
/// </summary>
public sealed class SignalTests(ITestOutputHelper output)
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private enum Phase { Before, Across, After }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Sigkill_and_restart_while_Kong_keeps_sending_recovers_through_replay_and_never_answers_wrongly(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "warn");
        await using var kong = rig.Simulator(workers: 2, failClosed: true); // Kong 3.8+
        var entity = kong.AddPlugin(rig.ConfigJson());
        var traffic = new GoodTraffic(kong, entity, rig.Minter);

        var results = new ConcurrentQueue<(Phase Phase, int Kind, SimResult? Result, string? Problem)>();
        int phase = (int)Phase.Before;
        int afterCount = 0;
        using var stop = new CancellationTokenSource();
        var loops = Enumerable.Range(0, 4).Select(n => Task.Run(async () =>
        {
            var rng = new Random(n);
            while (!stop.IsCancellationRequested)
            {
                var started = (Phase)Volatile.Read(ref phase);
                int kind = rng.Next(4);
                var (r, problem) = await traffic.TryOneAsync(n % 2, kind);
                // a request that started before the restart was complete and ended after the kill counts as "across"
                var ended = (Phase)Volatile.Read(ref phase);
                var p = started == Phase.After ? Phase.After : started == Phase.Before && ended == Phase.Before ? Phase.Before : Phase.Across;
                results.Enqueue((p, kind, r, problem));
                if (p == Phase.After) Interlocked.Increment(ref afterCount);
                if (problem is not null && p != Phase.Before) await Task.Delay(5); // the server is away: do not spin
            }
        })).ToArray();

        await Bounds.Until(() => results.Count >= 200, "200 requests before the kill");
        var oldPid = rig.Pid;
        Volatile.Write(ref phase, (int)Phase.Across);
        await rig.KillAsync();
        Assert.True(File.Exists(rig.Socket), "a killed server leaves its socket file (a stale one)");
        await Task.Delay(300); // Kong keeps sending into the outage
        await rig.RestartAsync(); // Kong's respawn: the stale socket is replaced
        Assert.NotEqual(oldPid, rig.Pid);
        Volatile.Write(ref phase, (int)Phase.After);
        await Bounds.Until(() => Volatile.Read(ref afterCount) >= 200, "200 requests after the restart");
        stop.Cancel();
        await Task.WhenAll(loops).Within();

        var all = results.ToArray();
        var before = all.Where(x => x.Phase == Phase.Before).ToArray();
        var across = all.Where(x => x.Phase == Phase.Across).ToArray();
        var after = all.Where(x => x.Phase == Phase.After).ToArray();
        foreach (var x in before) Assert.True(x.Problem is null, $"before the kill: {x.Problem}: {x.Result}");
        int failedClosed = 0, failedOpen = 0, exact = 0;
        foreach (var x in across)
        {
            if (x.Problem is null) { exact++; continue; }
            var r = x.Result;
            Assert.NotNull(r);
            if (protocol == KongProtocol.ProtoBuf)
            {
                // Kong 3.8+ answers a plugin-server failure with 500: never a pass, never a wrong identity
                Assert.True(r!.Outcome == SimOutcome.Failed && r.Status == 500, $"across the restart: {x.Problem}: {r}");
                failedClosed++;
            }
            else
            {
                // MsgPack:1: Kong lets the request through on every version (docs/protocol.md#msgpack-fails-open), with the client's own headers:
                // the documented reason for acl on authenticated_groups (SECURITY.md)
                Assert.True(r!.Outcome is SimOutcome.FailedOpen or SimOutcome.Failed, $"across the restart: {x.Problem}: {r}");
                Assert.Null(r.Exit);
                if (r.Outcome == SimOutcome.FailedOpen) failedOpen++; else failedClosed++;
            }
        }
        foreach (var x in after) Assert.True(x.Problem is null, $"after the restart: {x.Problem}: {x.Result}");
        var oldIds = before.Select(x => x.Result!.InstanceId).ToHashSet();
        var newIds = after.Select(x => x.Result!.InstanceId).ToHashSet();
        Assert.Empty(oldIds.Intersect(newIds)); // no instance id reused by the restarted server (Kong#8370)
        output.WriteLine($"{protocol}: before {before.Length} exact; across {across.Length} ({exact} exact, {failedClosed} failed closed, {failedOpen} failed open); " +
                         $"after {after.Length} exact; instance ids {string.Join(",", oldIds)} -> {string.Join(",", newIds)}");

        // a quiet crash: Kong's cached instance ids now name instances the new process never had. The first event of
        // each worker meets "closed" (ProtoBuf) or "no plugin instance" (MsgPack), resets, starts a new instance and
        // replays the whole event: exact, with one replay
        await rig.KillAsync();
        await rig.RestartAsync();
        for (int w = 0; w < kong.WorkerCount; w++)
        {
            var (r, problem) = await traffic.TryOneAsync(w, kind: 1);
            Assert.True(problem is null, $"first request of worker {w} after a quiet restart: {problem}: {r}");
            Assert.True(r!.Retries >= 1 || w > 0, $"worker {w}: the stale instance id was not replayed: {r}"); // a broadcast reset may spare later workers
            output.WriteLine($"worker {w} after a quiet restart: exact, {r.Retries} replay(s)");
        }

        await kong.DisposeAsync();
        var settled = await rig.SettleAsync(16, "after the restart run");
        output.WriteLine($"restarted server: {settled}");
        Assert.True(settled.RssKiB < 256 * 1024, $"the restarted server grew to {settled}");
    }

    /// <summary>
    /// SIGTERM while Kong keeps sending (docs/protocol.md#draining): no request waits (no instance claim is left held by a
    /// send that failed inside Kong's assert, no replay loop between a refused event and a started instance), none is
    /// answered wrongly, and once Kong respawns the server every request is exact again.
    /// </summary>
    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Sigterm_under_load_leaves_no_request_waiting_and_none_answered_wrongly(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "info");
        // Kong 3.8+, with nginx's keep-alive pool: a pooled connection the server closed is only noticed a little later
        await using var kong = new KongSimulator(rig.Socket, protocol, BinaryRig.PluginName, 2,
            new KongSimulatorOptions { Timeout = Bounds.KongTimeout, FailClosed = true, NginxPool = true });
        var entity = kong.AddPlugin(rig.ConfigJson());
        var traffic = new GoodTraffic(kong, entity, rig.Minter);

        var results = new ConcurrentQueue<(TimeSpan Took, Phase Phase, SimResult? Result, string? Problem)>();
        int phase = (int)Phase.Before, count = 0;
        using var stop = new CancellationTokenSource();
        var loops = Enumerable.Range(0, 8).Select(n => Task.Run(async () =>
        {
            var rng = new Random(n);
            while (!stop.IsCancellationRequested)
            {
                var started = (Phase)Volatile.Read(ref phase);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var (r, problem) = await traffic.TryOneAsync(n % 2, rng.Next(4));
                var ended = (Phase)Volatile.Read(ref phase);
                results.Enqueue((clock.Elapsed, started == ended ? started : Phase.Across, r, problem));
                Interlocked.Increment(ref count);
                if (problem is not null && started != Phase.Before) await Task.Delay(2); // the server is away: do not spin
            }
        })).ToArray();

        await Bounds.Until(() => Volatile.Read(ref count) >= 300, "300 requests before the signal");
        // a slow event keeps the server draining for a while, as Kong's in-flight requests do
        using var held = new HeldEvents(rig);
        await held.HoldAsync(await FuzzSetup.StartInstanceAsync(rig, rig.ConfigJson()), 1);
        Volatile.Write(ref phase, (int)Phase.Across);
        rig.Host.Signal(Posix.SIGTERM);
        await Task.Delay(300);
        Assert.Equal(1, await held.CompleteAsync(rig.Minter.Mint()));
        Assert.Equal(0, await rig.Host.WaitForExitAsync(Bounds.Hang));
        int atExit = Volatile.Read(ref count);
        await Bounds.Until(() => Volatile.Read(ref count) >= atExit + 100, "100 requests into the outage");
        await rig.RestartAsync(); // Kong's respawn
        Volatile.Write(ref phase, (int)Phase.After);
        int atRestart = Volatile.Read(ref count);
        await Bounds.Until(() => Volatile.Read(ref count) >= atRestart + 300, "300 requests after the respawn");
        stop.Cancel();
        await Task.WhenAll(loops).Within();

        var all = results.ToArray();
        int exact = 0, failedClosed = 0, failedOpen = 0;
        foreach (var x in all)
        {
            // one event takes milliseconds here; a held claim costs 10 s, a replay loop several round trips per replay
            Assert.True(x.Took < TimeSpan.FromSeconds(2), $"a request ({x.Phase}) took {x.Took.TotalMilliseconds:0} ms: {x.Problem}: {x.Result}");
            Assert.NotNull(x.Result);
            Assert.True(x.Result!.Retries <= 1, $"{x.Phase}: {x.Result.Retries} replays: {x.Result}");
            if (x.Problem is null) { exact++; continue; }
            Assert.True(x.Phase != Phase.Before, $"before the signal: {x.Problem}: {x.Result}");
            if (x.Result.Outcome == SimOutcome.Failed && x.Result.Status == 500) failedClosed++;
            else
            {
                // MsgPack:1 lets a request through when the server is unreachable, on every Kong version
                // (docs/protocol.md#msgpack-fails-open), with nothing from the plugin
                Assert.True(protocol == KongProtocol.MsgPack && x.Result.Outcome == SimOutcome.FailedOpen && x.Result.Exit is null,
                    $"{x.Phase}: {x.Problem}: {x.Result}");
                failedOpen++;
            }
        }
        for (int w = 0; w < kong.WorkerCount; w++) Assert.Equal(0, kong.Worker(w).HeldClaims);
        // once the respawned server answers, every request is exact again (the last ones; the first after the respawn may replay)
        foreach (var x in all.Where(x => x.Phase == Phase.After).Skip(50))
            Assert.True(x.Problem is null, $"after the respawn: {x.Problem}: {x.Result}");
        output.WriteLine($"{protocol}: {all.Length} requests, {exact} exact, {failedClosed} failed closed (500), {failedOpen} failed open; slowest " +
            string.Join(", ", all.GroupBy(x => x.Phase).Select(g => $"{g.Key} {g.Max(x => x.Took).TotalMilliseconds:0} ms")));
    }

    /// <summary>Events held in flight by a scripted Kong: the plugin asked for the request headers and waits.</summary>
    private sealed class HeldEvents(BinaryRig rig) : IDisposable
    {
        private readonly List<(RawConn Conn, long Seq, int EventId)> _held = new();

        public int Count => _held.Count;

        public async Task HoldAsync(int instanceId, int count)
        {
            for (int i = 0; i < count; i++)
            {
                var c = await RawConn.ConnectAsync(rig.Socket);
                long seq = 500 + i;
                if (rig.Protocol == KongProtocol.ProtoBuf)
                {
                    Assert.True(await c.SendFrameAsync(KongWire.HandleEvent(seq, instanceId, "access").ToByteArray()));
                    Assert.Equal("kong.request.get_headers", Encoding.ASCII.GetString(await c.ReadFrameAsync() ?? []));
                    Assert.NotNull(await c.ReadFrameAsync());
                    _held.Add((c, seq, 0));
                }
                else
                {
                    Assert.True(await c.SendAsync(MpWire.Request((uint)seq, "plugin.HandleEvent", 1)
                        .Object(("InstanceId", w => w.Int(instanceId)), ("EventName", w => w.Str("access"))).ToArray()));
                    var (v, eof) = await c.ReadMsgPackAsync();
                    Assert.False(eof);
                    var result = (Dictionary<string, object?>)((List<object?>)v!)[3]!;
                    Assert.Equal("kong.request.get_headers", ((Dictionary<string, object?>)result["Data"]!)["Method"]);
                    _held.Add((c, seq, (int)(double)result["EventId"]!));
                }
            }
        }

        /// <summary>Answers the held events with <paramref name="token"/> and plays them to their end; returns how many ended allowed.</summary>
        public async Task<int> CompleteAsync(string token)
        {
            int allowed = 0;
            foreach (var (c, seq, eventId) in _held)
            {
                if (rig.Protocol == KongProtocol.ProtoBuf)
                {
                    Assert.True(await c.SendFrameAsync(PbWire.Headers([("host", "api.test"), ("authorization", "Bearer " + token)])));
                    for (int i = 0; i < 32; i++)
                    {
                        var m = await c.ReadFrameAsync() ?? throw new InvalidDataException("closed mid-event");
                        if (m.Length == 0)
                        {
                            Assert.Equal(seq, RpcReturn.Parser.ParseFrom(await c.ReadFrameAsync()).Sequence);
                            allowed++;
                            break;
                        }
                        Assert.NotNull(await c.ReadFrameAsync());
                        await c.SendFrameAsync([]);
                    }
                }
                else
                {
                    uint msgId = (uint)seq * 100;
                    byte[] data = MpWire.Request(msgId, "plugin.StepMultiMap", 1).Map(2).Str("EventId").Int(eventId).Str("Data")
                        .Map(1).Str("authorization").Array(1).Str("Bearer " + token).ToArray();
                    for (int i = 0; i < 32; i++)
                    {
                        Assert.True(await c.SendAsync(data));
                        var (v, eof) = await c.ReadMsgPackAsync();
                        if (eof) throw new InvalidDataException("closed mid-event");
                        var msg = (List<object?>)v!;
                        Assert.Null(msg[2]);
                        var next = ((Dictionary<string, object?>)msg[3]!)["Data"];
                        if (next is "ret") { allowed++; break; }
                        data = MpWire.Request(++msgId, "plugin.Step", 1).Map(1).Str("EventId").Int(eventId).ToArray();
                    }
                }
            }
            return allowed;
        }

        public void Dispose()
        {
            foreach (var (c, _, _) in _held) c.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Sigterm_with_events_in_flight_lets_them_finish_then_exits_0_and_removes_the_socket(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "info", "--shutdown-timeout", "60");
        int id = await FuzzSetup.StartInstanceAsync(rig, rig.ConfigJson());
        await using (var kong = rig.Simulator())
        {
            var traffic = new GoodTraffic(kong, kong.AddPlugin(rig.ConfigJson()), rig.Minter);
            await traffic.RunCountAsync(loops: 2, perLoop: 5);
            traffic.AssertClean();
        }
        using var held = new HeldEvents(rig);
        await held.HoldAsync(id, 3);

        rig.Host.Signal(Posix.SIGTERM);
        await rig.Host.WaitForStderrAsync("signal received");
        await Bounds.Until(() => !Posix.IsListening(rig.Socket), "the listener to close");
        await Task.Delay(300);
        Assert.False(rig.Host.HasExited, "the server exited with events in flight");

        Assert.Equal(3, await held.CompleteAsync(rig.Minter.Mint())); // they run to their normal, allowed end
        Assert.Equal(0, await rig.Host.WaitForExitAsync(Bounds.Hang));
        Assert.False(File.Exists(rig.Socket), "the socket file was left behind");
        output.WriteLine(rig.Host.Stderr.Split('\n').Where(l => l.Contains("stop", StringComparison.Ordinal) || l.Contains("signal", StringComparison.Ordinal)).Aggregate("", (a, l) => a + l + "\n"));
    }

    [Fact]
    public Task Sigterm_starts_no_new_event_even_on_an_open_connection_ProtoBuf() => NoNewEventAfterSigtermAsync(KongProtocol.ProtoBuf);

    [Fact]
    public Task Sigterm_starts_no_new_event_even_on_an_open_connection_MsgPack() => NoNewEventAfterSigtermAsync(KongProtocol.MsgPack);

    private async Task NoNewEventAfterSigtermAsync(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "info", "--shutdown-timeout", "60");
        int id = await FuzzSetup.StartInstanceAsync(rig, rig.ConfigJson());
        using var held = new HeldEvents(rig);
        await held.HoldAsync(id, 1);                      // keeps the server draining
        using var idle = await RawConn.ConnectAsync(rig.Socket); // a pooled keep-alive connection, idle
        await Task.Delay(100);

        rig.Host.Signal(Posix.SIGTERM);
        await rig.Host.WaitForStderrAsync("signal received");
        await Bounds.Until(() => !Posix.IsListening(rig.Socket), "the listener to close");

        // Kong reuses the pooled connection for a new request: the event must not start
        bool started;
        if (protocol == KongProtocol.ProtoBuf)
        {
            Assert.True(await idle.SendFrameAsync(KongWire.HandleEvent(900, id, "access").ToByteArray()));
            var first = await idle.ReadFrameAsync();
            started = first is { Length: > 0 };
        }
        else
        {
            await idle.SendAsync(MpWire.Request(900, "plugin.HandleEvent", 1).Object(("InstanceId", w => w.Int(id)), ("EventName", w => w.Str("access"))).ToArray());
            var (v, eof) = await idle.ReadMsgPackAsync();
            started = !eof && v is List<object?> { Count: 4 } msg && msg[2] is null && msg[3] is Dictionary<string, object?> r && r.GetValueOrDefault("Data") is Dictionary<string, object?>;
        }
        Assert.False(started, "a new event started after SIGTERM");

        Assert.Equal(1, await held.CompleteAsync(rig.Minter.Mint()));
        Assert.Equal(0, await rig.Host.WaitForExitAsync(Bounds.Hang));
    }
}
