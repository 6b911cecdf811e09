using System.Collections.Concurrent;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.KongSide;

/// <summary>
/// The socket across Kong's process supervision (docs/protocol.md#server-lifecycle, docs/protocol.md#socket-file):
/// `kong reload` (the new worker 0 starts a server while the old one serves, then the old worker 0 sends it SIGTERM),
/// a crash respawned a second later, and two servers binding one stale socket at once.
/// </summary>
public sealed class ReloadTests(ITestOutputHelper output)
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    /// <summary>
    /// `kong reload` as nginx runs it: the new generation's worker 0 starts a server, which takes the socket over; the
    /// new workers' requests reach it; the old workers keep finishing requests on the connections they pooled to the
    /// old server, across the SIGTERM their worker 0 sends (0.5 s after the takeover), then exit, closing those
    /// connections (on ProtoBuf:1 Kong also closes a connection after every exit, so the old workers move to the new
    /// server early, where their first event per instance is replayed once: "no plugin instance", Kong's recovery).
    /// Every event of both generations is answered exactly, and the old server exits once Kong's old workers closed its
    /// connections.
    /// </summary>
    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Reload_the_new_server_takes_the_socket_the_old_one_serves_the_old_workers_and_no_event_fails(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "info");
        var oldWorkers = rig.Simulator(workers: 2, failClosed: true);
        var oldTraffic = new GoodTraffic(oldWorkers, oldWorkers.AddPlugin(rig.ConfigJson()), rig.Minter);
        using var stopOld = new CancellationTokenSource();
        var oldRun = oldTraffic.RunAsync(loops: 4, stopOld.Token);
        await Bounds.Until(() => oldTraffic.Requests >= 200, "200 requests to the first server");

        var old = rig.Host;
        var successor = await rig.StartSuccessorAsync();   // new connections now reach the new server
        try
        {
            await using var newWorkers = rig.Simulator(workers: 2, failClosed: true);
            var newTraffic = new GoodTraffic(newWorkers, newWorkers.AddPlugin(rig.ConfigJson()), rig.Minter);
            using var stopNew = new CancellationTokenSource();
            var newRun = newTraffic.RunAsync(loops: 4, stopNew.Token);

            await Task.Delay(500);
            long oldAtSignal = oldTraffic.Requests;
            old.Signal(Posix.SIGTERM);                          // the old worker 0 exits and stops its server
            await Task.Delay(500);                              // the other old workers still finish requests
            long oldAfterSignal = oldTraffic.Requests - oldAtSignal;
            stopOld.Cancel();
            await oldRun;
            await oldWorkers.DisposeAsync();                    // the old workers exit: their pooled connections close
            Assert.Equal(0, await old.WaitForExitAsync(Bounds.Hang));

            long newAtExit = newTraffic.Requests;
            await Bounds.Until(() => newTraffic.Requests >= newAtExit + 200, "200 requests after the old server exited");
            stopNew.Cancel();
            await newRun;

            output.WriteLine($"{protocol}: old workers {oldTraffic.Summary()}, {oldAfterSignal} of them after the SIGTERM; " +
                             $"new workers {newTraffic.Summary()}");
            oldTraffic.AssertClean();
            newTraffic.AssertClean();
            Assert.True(oldAfterSignal > 0, "no old-worker request crossed the SIGTERM");
            Assert.True(File.Exists(rig.Socket), "the old server removed the new server's socket");
            Assert.Equal(successor.Pid, Posix.ListenerPid(rig.Socket));
            Assert.Contains("took over", successor.Stderr);
            Assert.Contains("belongs to another server", old.Stderr);
        }
        finally
        {
            await rig.AdoptAsync(successor); // the rig stops the successor too, also when an assertion failed
        }
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Crash_then_respawn_a_second_later_requests_recover_through_replay(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "warn");
        await using var kong = rig.Simulator(workers: 2, failClosed: true);
        var entity = kong.AddPlugin(rig.ConfigJson());
        var traffic = new GoodTraffic(kong, entity, rig.Minter);

        // 0: before the kill, 1: the outage (or across it), 2: started after the new server listened
        var results = new ConcurrentQueue<(int Phase, SimResult? Result, string? Problem)>();
        int phase = 0, after = 0;
        using var stop = new CancellationTokenSource();
        var loops = Enumerable.Range(0, 4).Select(n => Task.Run(async () =>
        {
            var rng = new Random(n);
            while (!stop.IsCancellationRequested)
            {
                int started = Volatile.Read(ref phase);
                var (r, problem) = await traffic.TryOneAsync(n % 2, rng.Next(4));
                int p = started == Volatile.Read(ref phase) ? started : 1;
                results.Enqueue((p, r, problem));
                if (p == 2) Interlocked.Increment(ref after);
                if (problem is not null && p != 0) await Task.Delay(5); // the server is away: do not spin
            }
        })).ToArray();

        await Bounds.Until(() => results.Count >= 200, "200 requests before the crash");
        Volatile.Write(ref phase, 1);
        await rig.KillAsync();
        await Task.Delay(TimeSpan.FromSeconds(1)); // Kong respawns no sooner than a second after the last start
        // with no server, no instance can be started: an id a worker still caches names an instance of the dead process
        // (an event cut by the kill drops its worker's cache, and so does no later failure: then nothing is stale)
        int staleWorkers = Enumerable.Range(0, 2).Count(w => kong.Worker(w).CachedInstanceId(entity) is not null);
        await rig.RestartAsync();
        Volatile.Write(ref phase, 2);
        await Bounds.Until(() => Volatile.Read(ref after) >= 200, "200 requests after the respawn");
        stop.Cancel();
        await Task.WhenAll(loops).Within();

        var all = results.ToArray();
        foreach (var x in all.Where(x => x.Phase != 1)) Assert.True(x.Problem is null, $"phase {x.Phase}: {x.Problem}: {x.Result}");
        foreach (var x in all.Where(x => x.Phase == 1 && x.Problem is not null))
        {
            // the outage: never a pass with a wrong identity; ProtoBuf on Kong 3.8+ fails closed, MsgPack fails open
            Assert.NotNull(x.Result);
            Assert.Null(x.Result!.Exit);
            Assert.True(protocol == KongProtocol.MsgPack || x.Result.Status == 500, $"outage: {x.Problem}: {x.Result}");
        }
        var recovered = all.Where(x => x.Phase == 2).ToArray();
        // Kong's cached instance ids are stale after the respawn: the first events that reach the new server replay
        int replays = all.Where(x => x.Phase != 0 && x.Problem is null).Sum(x => x.Result!.Retries);
        if (staleWorkers > 0) Assert.True(replays >= 1, $"{staleWorkers} worker(s) cached a stale instance id, but no event was replayed");
        var oldIds = all.Where(x => x.Phase == 0).Select(x => x.Result!.InstanceId).ToHashSet();
        var newIds = recovered.Select(x => x.Result!.InstanceId).ToHashSet();
        Assert.Empty(oldIds.Intersect(newIds)); // the new process's ids do not name the old process's instances
        output.WriteLine($"{protocol}: {all.Count(x => x.Phase == 0)} before, {all.Count(x => x.Phase == 1)} in the outage " +
                         $"({all.Count(x => x.Phase == 1 && x.Problem is not null)} failed), {recovered.Length} after with {replays} replay(s); {staleWorkers} worker(s) held a stale id");
    }

    [Fact]
    public async Task Two_servers_started_together_on_a_stale_socket_leave_exactly_one_reachable_and_the_file_in_place()
    {
        const int Rounds = 20;
        var wins = new int[2];
        for (int round = 0; round < Rounds; round++)
        {
            using var dir = new TempDir();
            Posix.CreateStaleSocket(dir.DefaultSocket);
            string[] args = ["-kong-prefix", dir.Path, "--log-level", "info"];
            var started = await Task.WhenAll(HostProcess.StartAsync(args), HostProcess.StartAsync(args));
            await using var a = started[0];
            await using var b = started[1];
            await a.WaitForStderrAsync(" serving ");
            await b.WaitForStderrAsync(" serving "); // both bound and listen

            int? owner = Posix.ListenerPid(dir.DefaultSocket);
            Assert.True(owner == a.Pid || owner == b.Pid, $"round {round}: the socket reaches pid {owner}, neither {a.Pid} nor {b.Pid}");
            var (winner, loser) = owner == a.Pid ? (a, b) : (b, a);
            wins[owner == a.Pid ? 0 : 1]++;
            for (int i = 0; i < 5; i++) Assert.Equal(winner.Pid, Posix.ListenerPid(dir.DefaultSocket)); // exactly one reachable
            Assert.False(loser.HasExited, "the loser keeps running (Kong stops it; it must not take the socket with it)");
            Assert.Equal(["gitlab-ci-auth.socket"], dir.Entries());

            loser.Signal(Posix.SIGTERM);
            Assert.Equal(0, await loser.WaitForExitAsync(Bounds.Hang));
            Assert.True(File.Exists(dir.DefaultSocket), $"round {round}: the loser removed the winner's socket file");
            Assert.Equal(winner.Pid, Posix.ListenerPid(dir.DefaultSocket));

            winner.Signal(Posix.SIGTERM);
            Assert.Equal(0, await winner.WaitForExitAsync(Bounds.Hang));
            Assert.Empty(dir.Entries()); // the owner removes its own file
        }
        output.WriteLine($"{Rounds} rounds: the first started won {wins[0]}, the second {wins[1]}");
    }
}
