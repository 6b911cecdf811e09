using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Instances: start, reuse, config changes, shared handlers, ids, idle expiry, server restarts.</summary>
public class InstanceLifecycleTests
{
    private static SimRequest Req(string v = "v") => new() { Headers = { ["x-in"] = v, ["host"] = "h" } };

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Events_reuse_the_instance_until_the_config_changes(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        var entity = host.Kong.AddPlugin("{}");
        var worker = host.Kong.Worker(0);

        var r1 = await worker.RunAsync(entity, "access", Req("1")).Within();
        Assert.Equal(1, r1.InstanceStarts);
        int first = r1.InstanceId!.Value;
        for (int i = 0; i < 3; i++)
        {
            var r = await worker.RunAsync(entity, "access", Req()).Within();
            Assert.Equal(200, r.Status);
            Assert.Equal(0, r.InstanceStarts);
            Assert.Equal(first, r.InstanceId);
            Assert.Equal(0, r.Retries);
        }
        Assert.Equal(1, host.Server.Registry.Count);

        host.Kong.UpdateConfig(entity, """{"header":"x-other"}"""); // new __seq__
        var r2 = await worker.RunAsync(entity, "access", new SimRequest { Headers = { ["x-other"] = "o", ["host"] = "h" } }).Within();
        Assert.Equal(200, r2.Status);
        Assert.Equal("o@h", r2.UpstreamHeaders["x-out"]); // the new config is in effect
        Assert.Equal(1, r2.InstanceStarts);
        Assert.NotEqual(first, r2.InstanceId);
        Assert.Equal([first], r2.ClosedInstances);        // Kong closed the replaced instance...
        Assert.False(host.Server.Registry.TryGet(first, out _)); // ...and the server forgot it
        Assert.True(host.Server.Registry.TryGet(r2.InstanceId!.Value, out _));
        Assert.Equal(1, host.Server.Registry.Count);
    }

    [Fact]
    public async Task ProtoBuf_a_closed_instance_id_is_unknown_on_the_wire()
    {
        await using var host = T.Host(new EchoPlugin());
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", "{}");
        await c.SendFrameAsync(KongWire.CloseInstance(3, id)).Within();
        var reply = await c.ReadRpcReturnAsync().Within();
        Assert.Equal(3, reply.Sequence);
        Assert.Equal(id, reply.InstanceStatus.InstanceId);
        await c.SendFrameAsync(KongWire.HandleEvent(4, id, "access")).Within();
        Assert.True(await c.WaitForCloseAsync(T.Bound));
        Assert.Equal(0, c.BufferedBytes);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Identical_configs_share_one_handler_disposed_with_the_last_instance(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, protocol, workers: 2);
        // same config, different scopes: Kong's injected keys differ, the canonical config does not
        var a = host.Kong.AddPlugin("""{"header":"x-in"}""", routeId: Guid.NewGuid().ToString());
        var b = host.Kong.AddPlugin("{}", serviceId: Guid.NewGuid().ToString());
        foreach (var w in new[] { 0, 1 })
        foreach (var e in new[] { a, b })
            Assert.Equal(200, (await host.Kong.Worker(w).RunAsync(e, "access", Req()).Within()).Status);
        Assert.Equal(4, host.Server.Registry.Count);        // one instance per worker and entity
        Assert.Equal(1, host.Server.Registry.HandlerCount);  // one handler for all of them
        Assert.Equal(1, plugin.HandlersCreated);

        host.Kong.UpdateConfig(a, """{"mode":"slow"}""");
        host.Kong.UpdateConfig(b, """{"mode":"slow"}""");
        // worker 0 moves both entities to the new config; worker 1 still holds instances of the old one
        foreach (var e in new[] { a, b })
        {
            var r = await host.Kong.Worker(0).RunAsync(e, "access", Req()).Within();
            Assert.Equal(200, r.Status);
            Assert.Single(r.ClosedInstances);
        }
        Assert.Equal(2, plugin.HandlersCreated);
        Assert.Equal(0, plugin.HandlersDisposed);            // worker 1's instances still use the old handler
        Assert.Equal(2, host.Server.Registry.HandlerCount);

        var ra = await host.Kong.Worker(1).RunAsync(a, "access", Req()).Within();
        Assert.Single(ra.ClosedInstances);
        Assert.Equal(0, plugin.HandlersDisposed);            // one instance left on the old handler
        var rb = await host.Kong.Worker(1).RunAsync(b, "access", Req()).Within();
        Assert.Single(rb.ClosedInstances);
        Assert.Equal(1, plugin.HandlersDisposed);            // the last one closed: disposed
        Assert.Equal(2, plugin.HandlersCreated);
        Assert.Equal(1, host.Server.Registry.HandlerCount);
        Assert.Equal(4, host.Server.Registry.Count);
    }

    [Fact]
    public void Ids_count_up_from_a_random_start_and_a_restarted_server_starts_elsewhere()
    {
        using var registry = new InstanceRegistry(new EchoPlugin(), ServerLog.Silent, TimeSpan.FromHours(1), sweep: false);
        var ids = new List<int>();
        for (int i = 0; i < 3000; i++)
        {
            var inst = registry.Start("""{"__seq__":1}"""u8);
            ids.Add(inst.Id);
            if (i % 2 == 0) Assert.True(registry.Close(inst.Id)); // closing never frees an id for reuse
        }
        Assert.All(ids, id => Assert.InRange(id, 1, int.MaxValue));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(ids.Zip(ids.Skip(1)), p => Assert.Equal(p.First == int.MaxValue ? 1 : p.First + 1, p.Second));
        Assert.Equal(1500, registry.Count);
        Assert.Equal(1, registry.HandlerCount);
        // a restarted server (a new registry) counts from another random point: Kong's cached ids of the previous
        // process are unknown to it ("no plugin instance", a replay), not another config's instances
        using var restarted = new InstanceRegistry(new EchoPlugin(), ServerLog.Silent, TimeSpan.FromHours(1), sweep: false);
        var again = Enumerable.Range(0, 20).Select(_ => restarted.Start("{}"u8).Id).ToList();
        Assert.Empty(again.Intersect(ids));
    }

    [Fact]
    public async Task Many_instances_of_distinct_configs_that_expire_leave_no_entries_behind()
    {
        var plugin = new EchoPlugin();
        using var registry = new InstanceRegistry(plugin, ServerLog.Silent, TimeSpan.FromMilliseconds(1), sweep: false);
        const int Starts = 150_000;
        var seen = new HashSet<int>();
        int maxEntries = 0;
        for (int i = 0; i < Starts; i++)
        {
            // every config distinct (a new __seq__ alone would share the handler): Kong after config pushes
            var inst = registry.Start(System.Text.Encoding.UTF8.GetBytes($$"""{"__seq__":{{i}},"header":"x-h{{i}}"}"""));
            Assert.True(seen.Add(inst.Id));
            if (i % 1000 == 999)
            {
                maxEntries = Math.Max(maxEntries, registry.Entries);
                await Task.Delay(2);
                registry.ExpireIdle(); // Kong dropped them without closing them: they expire
            }
        }
        await Task.Delay(2);
        registry.ExpireIdle();

        Assert.Equal(Starts, seen.Count);
        Assert.Equal(Starts, plugin.HandlersCreated);
        Assert.Equal(Starts, plugin.HandlersDisposed);
        Assert.Equal(0, registry.Count);
        Assert.Equal(0, registry.HandlerCount);
        Assert.Equal(0, registry.Entries);             // nothing kept per id ever issued
        Assert.InRange(maxEntries, 1, 2 * 1000);       // at most the live ones (an instance and its handler each)
    }

    [Fact]
    public async Task Expiry_drops_only_idle_instances()
    {
        using var registry = new InstanceRegistry(new EchoPlugin(), ServerLog.Silent, TimeSpan.FromMilliseconds(1), sweep: false);
        var idle = registry.Start("{}"u8);
        var busy = registry.Start("{}"u8);
        var fresh = new InstanceRegistry(new EchoPlugin(), ServerLog.Silent, TimeSpan.FromHours(1), sweep: false);
        var kept = fresh.Start("{}"u8);
        Interlocked.Increment(ref busy.InFlight); // an event is running on it
        await Task.Delay(50);                    // both are now older than the 1 ms idle timeout

        Assert.Equal(1, registry.ExpireIdle());
        Assert.False(registry.TryGet(idle.Id, out _));
        Assert.True(registry.TryGet(busy.Id, out _));
        Assert.Equal(0, fresh.ExpireIdle());     // used within the (1 h) timeout: kept
        Assert.True(fresh.TryGet(kept.Id, out _));

        Interlocked.Decrement(ref busy.InFlight);
        busy.Touch();
        await Task.Delay(50);
        Assert.Equal(1, registry.ExpireIdle());
        Assert.Equal(0, registry.Count);
        Assert.Equal(0, registry.HandlerCount);  // the shared handler went with the last instance
        fresh.Dispose();
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Expiry_never_takes_an_instance_with_an_event_in_flight_and_Kong_replays_after_it(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, protocol, configure: o => o.With(idle: TimeSpan.FromMinutes(10)));
        var idleEntity = host.Kong.AddPlugin("{}");
        var gated = host.Kong.AddPlugin("""{"mode":"gate"}""");
        var worker = host.Kong.Worker(0);
        var r = await worker.RunAsync(idleEntity, "access", Req()).Within();
        Assert.Equal(200, r.Status);
        int idleId = r.InstanceId!.Value;

        var inFlight = worker.RunAsync(gated, "access");
        await plugin.Entered.Task.Within();
        int gatedId = worker.CachedInstanceId(gated)!.Value;
        // both instances were last used "an hour ago" (rather than waiting out a tiny timeout, which the
        // registry's own sweep could also act on at the wrong moment)
        foreach (var id in new[] { idleId, gatedId })
        {
            Assert.True(host.Server.Registry.TryGet(id, out var inst));
            Volatile.Write(ref inst.LastUsedTicks, Environment.TickCount64 - (long)TimeSpan.FromHours(1).TotalMilliseconds);
        }
        Assert.Equal(1, host.Server.Registry.ExpireIdle());
        Assert.False(host.Server.Registry.TryGet(idleId, out _));
        Assert.True(host.Server.Registry.TryGet(gatedId, out _));

        plugin.Gate.SetResult();
        r = await inFlight.Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("open", r.UpstreamHeaders["x-gate"]);
        Assert.Equal(0, r.Retries);

        // the expired instance: Kong's replay starts a new one, transparently for the request
        r = await worker.RunAsync(idleEntity, "access", Req("again")).Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("again@h", r.UpstreamHeaders["x-out"]);
        Assert.Equal(1, r.Retries);
        Assert.Equal(1, r.InstanceStarts);
        Assert.NotEqual(idleId, r.InstanceId);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_restarted_server_on_the_same_socket_is_picked_up_by_the_same_Kong(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        var host = T.Host(plugin, protocol);
        KongPluginServer? second = null;
        try
        {
            var entity = host.Kong.AddPlugin("{}");
            var worker = host.Kong.Worker(0);
            var r = await worker.RunAsync(entity, "access", Req("before")).Within();
            Assert.Equal(200, r.Status);
            int oldId = r.InstanceId!.Value;
            Assert.Equal(1, worker.PooledConnections);

            await host.Server.StopAsync().Within();
            Assert.False(File.Exists(host.SocketPath));
            second = new KongPluginServer(plugin, host.Server.Options);
            second.Start();

            r = await worker.RunAsync(entity, "access", Req("after")).Within();
            Assert.True(r.Status == 200, r.ToString());
            Assert.Equal("after@h", r.UpstreamHeaders["x-out"]);
            Assert.Equal(1, r.Retries);
            Assert.Equal(1, r.InstanceStarts);
            Assert.NotEqual(oldId, r.InstanceId);
            Assert.True(second.Registry.TryGet(r.InstanceId!.Value, out _));
            await T.Until(() => second.EventsServed == 1, "the new server counts the event (after Kong's last reply)");
        }
        finally
        {
            host.Kong.Dispose();
            if (second is not null) await second.StopAsync().Within();
            await host.DisposeAsync();
        }
    }
}
