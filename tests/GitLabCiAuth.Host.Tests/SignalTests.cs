using System.Collections.Concurrent;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>SIGTERM/SIGINT (Kong's exit_worker, kong reload) and SIGKILL + restart (a crash, Kong's respawn).</summary>
public sealed class SignalTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Sigterm_stops_accepting_finishes_in_flight_events_then_exits_0_and_removes_the_socket()
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket,
            "--plugin", "example", "-kong-prefix", dir.Path, "--log-level", "info", "--shutdown-timeout", "120");
        await using var kong = Example.Simulator(dir.ExampleSocket, workers: 4);
        var entity = kong.AddPlugin("{}");

        // many concurrent requests, before and across the signal
        var results = new ConcurrentQueue<(bool NotBeforeSignal, string Value, SimResult Result)>();
        int signalled = 0, completedBefore = 0;
        using var stop = new CancellationTokenSource();
        var loops = Enumerable.Range(0, 32).Select(n => Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                string value = $"l{n}-{i}";
                var r = await kong.Worker(n % 4).RunAsync(entity, "access", Example.Request(value));
                bool after = Volatile.Read(ref signalled) == 1; // false: the whole request ran before the signal
                results.Enqueue((after, value, r));
                if (!after) Interlocked.Increment(ref completedBefore);
                if (r.Status != 200) await Task.Delay(5); // the server is going away: do not spin
            }
        })).ToArray();
        await Until(() => Volatile.Read(ref completedBefore) >= 300, "300 requests before the signal");

        // one event held in flight deterministically
        await using var held = await HeldEvent.StartAsync(dir.ExampleSocket);

        Volatile.Write(ref signalled, 1);
        host.Signal(Posix.SIGTERM);
        await host.WaitForStderrAsync("signal received");
        await Until(() => !Posix.IsListening(dir.ExampleSocket), "the listener to close");
        Assert.False(host.HasExited, "the host exited with an event in flight");

        await held.CompleteAsync("held-1", "api.test"); // the in-flight event runs to its normal end

        Assert.Equal(0, await host.WaitForExitAsync(Bound));
        Assert.False(File.Exists(dir.ExampleSocket), "the socket file was left behind");
        stop.Cancel();
        await Task.WhenAll(loops).WaitAsync(Bound);

        foreach (var (after, value, r) in results)
        {
            if (!after || r.Status == 200)
            {
                Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r.ToString());
                Assert.Equal(Example.Expected(value), r.UpstreamHeaders["x-example"]);
            }
            else
            {
                // across or after the signal: refused or closed, never a wrong answer or a hang
                Assert.True(r.Outcome == SimOutcome.Failed && r.Status == 500 && r.Error is not null, r.ToString());
            }
        }
        Assert.Equal("", host.Stdout);
    }

    [Theory]
    [InlineData(Posix.SIGTERM)]
    [InlineData(Posix.SIGINT)]
    public async Task Shutdown_is_bounded_when_an_event_never_finishes(int signal)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket,
            "--plugin", "example", "-kong-prefix", dir.Path, "--shutdown-timeout", "1");
        await using var held = await HeldEvent.StartAsync(dir.ExampleSocket);

        host.Signal(signal);

        Assert.Equal(0, await host.WaitForExitAsync(Bound));
        Assert.False(File.Exists(dir.ExampleSocket), "the socket file was left behind");
        Assert.Contains("events still running at shutdown", host.Stderr);
        Assert.True(await held.Connection.WaitForCloseAsync(Bound), "the abandoned event's connection was not closed");
    }

    [Fact]
    public async Task A_server_started_while_the_old_one_drains_keeps_its_socket()
    {
        // kong reload: the old worker 0 sends SIGTERM, the new worker 0 spawns the new server at once
        using var dir = new TempDir();
        string[] args = ["--plugin", "example", "-kong-prefix", dir.Path, "--log-level", "info", "--shutdown-timeout", "120"];
        await using var old = await HostProcess.ServeAsync(dir.ExampleSocket, args);
        await using var held = await HeldEvent.StartAsync(dir.ExampleSocket);
        old.Signal(Posix.SIGTERM);
        await old.WaitForStderrAsync("signal received");
        await Until(() => !Posix.IsListening(dir.ExampleSocket), "the old listener to close");

        await using var successor = await HostProcess.ServeAsync(dir.ExampleSocket, args);
        await held.CompleteAsync("held-2", "api.test");
        Assert.Equal(0, await old.WaitForExitAsync(Bound));

        Assert.True(File.Exists(dir.ExampleSocket), "the old server removed its successor's socket on exit");
        await Example.AssertServesAsync(dir.ExampleSocket);
        Assert.False(successor.HasExited);
    }

    [Fact]
    public async Task After_sigkill_a_restarted_server_takes_over_and_Kong_replay_recovers()
    {
        using var dir = new TempDir();
        string[] args = ["--plugin", "example", "-kong-prefix", dir.Path];
        var first = await HostProcess.ServeAsync(dir.ExampleSocket, args);
        HostProcess? second = null;
        try
        {
            // Kong keeps sending through the crash (workers 0 and 1 of one node) ...
            await using var kong = Example.Simulator(dir.ExampleSocket, workers: 2);
            var entity = kong.AddPlugin("{}");
            // ... while another node stays idle with instance ids cached from the dead server
            await using var idle = Example.Simulator(dir.ExampleSocket);
            var idleEntity = idle.AddPlugin("{}");
            var idleBefore = await Example.AssertServesAsync(idle, idleEntity, "idle-before");

            var oldIds = new ConcurrentDictionary<int, byte>();
            oldIds[idleBefore.InstanceId!.Value] = 0;
            int phase = 0; // 0: first server up, 1: killed, 2: second server listening
            var results = new ConcurrentQueue<(int Phase, string Value, SimResult Result)>();
            using var stop = new CancellationTokenSource();
            var loops = Enumerable.Range(0, 8).Select(n => Task.Run(async () =>
            {
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    int p = Volatile.Read(ref phase);
                    string value = $"l{n}-{i}";
                    var r = await kong.Worker(n % 2).RunAsync(entity, "access", Example.Request(value));
                    results.Enqueue((p, value, r));
                    if (p == 0 && r.InstanceId is int id && r.Status == 200) oldIds[id] = 0;
                    if (r.Status != 200) await Task.Delay(5);
                }
            })).ToArray();
            await Until(() => results.Count(x => x.Phase == 0) >= 100, "100 requests on the first server");

            Volatile.Write(ref phase, 1);
            first.Signal(Posix.SIGKILL);
            await first.WaitForExitAsync(Bound);
            Assert.True(File.Exists(dir.ExampleSocket), "SIGKILL should leave the socket file behind");

            second = await HostProcess.ServeAsync(dir.ExampleSocket, args);
            Volatile.Write(ref phase, 2);
            await Until(() => results.Count(x => x.Phase == 2 && x.Result.Status == 200) >= 100, "100 requests on the second server");

            // the idle node's cached id is unknown to the new server: "closed", reset, StartInstance, replay
            var idleAfter = await idle.Worker(0).RunAsync(idleEntity, "access", Example.Request("idle-after"));
            Assert.True(idleAfter.Outcome == SimOutcome.Completed && idleAfter.Status == 200, idleAfter.ToString());
            Assert.True(idleAfter.Retries >= 1, idleAfter.ToString());
            Assert.Equal(Example.Expected("idle-after"), idleAfter.UpstreamHeaders["x-example"]);
            Assert.NotEqual(idleBefore.InstanceId, idleAfter.InstanceId);

            stop.Cancel();
            await Task.WhenAll(loops).WaitAsync(Bound);

            foreach (var (p, value, r) in results)
            {
                if (p == 0 && r.Status == 200 || p == 2)
                {
                    Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, $"phase {p}: {r}");
                    Assert.Equal(Example.Expected(value), r.UpstreamHeaders["x-example"]);
                }
                if (p >= 1 && r.Status == 200)
                    Assert.False(oldIds.ContainsKey(r.InstanceId!.Value), $"the new server reused instance id {r.InstanceId}");
                if (r.Status != 200)
                    Assert.True(p <= 1 && r.Outcome == SimOutcome.Failed && r.Error is not null, $"phase {p}: {r}");
            }
            Assert.Contains(results, x => x.Phase == 0 && x.Result.Status == 200);
            Assert.False(oldIds.ContainsKey(idleAfter.InstanceId!.Value));
        }
        finally
        {
            await first.DisposeAsync();
            if (second is not null) await second.DisposeAsync();
        }
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }
}
