using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using PbString = Kong.PluginServer.Protocol.ProtoBuf.Messages.String;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Events on the wire: the end of an event, exit, calls after exit, unknown instances, plugin failures, async handlers.</summary>
public class EventBasicsTests
{
    private const string EchoConfig = """{"header":"x-in","mode":"echo","__seq__":1}""";

    private static byte[] PbStringBytes(string v) => new PbString { V = v }.ToByteArray();

    [Fact]
    public async Task ProtoBuf_event_steps_then_empty_end_frame_then_the_echoed_sequence()
    {
        await using var host = T.Host(new EchoPlugin());
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", EchoConfig);

        await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        // the two reads leave in one write: method frame, argument frame, twice
        Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        Assert.Equal(PbStringBytes("x-in"), await c.ReadFrameAsync().Within());
        Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        Assert.Equal(PbStringBytes("host"), await c.ReadFrameAsync().Within());
        await c.SendFrameAsync(PbStringBytes("A")).Within();
        await c.SendFrameAsync(PbStringBytes("H")).Within();

        Assert.Equal("kong.service.request.set_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        var kv = KV.Parser.ParseFrom(await c.ReadFrameAsync().Within());
        Assert.Equal("x-out", kv.K);
        Assert.Equal("A@H", kv.V.StringValue);
        // end of PDK steps: exactly four zero bytes, then RpcReturn{sequence = 3} and nothing else
        Assert.Equal(new byte[] { 0, 0, 0, 0, 2, 0, 0, 0, 0x08, 0x03 }, await c.ReadExactAsync(10).Within());
        Assert.Equal(0, c.BufferedBytes);
        await c.SendFrameAsync(ReadOnlyMemory<byte>.Empty).Within(); // Kong's (empty) reply to set_header

        // the next command on the same connection: a phase the plugin does not declare, a multi-byte sequence
        await c.SendFrameAsync(KongWire.HandleEvent(300, id, "rewrite")).Within();
        Assert.Equal(new byte[] { 0, 0, 0, 0, 3, 0, 0, 0, 0x08, 0xac, 0x02 }, await c.ReadExactAsync(11).Within());
        Assert.False(await c.WaitForCloseAsync(T.Quiet), "the connection stays open for the next command");
        Assert.Equal(0, c.BufferedBytes);
        await T.Until(() => host.Server.EventsServed == 2, "both events are counted");
    }

    [Fact]
    public async Task MsgPack_event_is_one_rpc_per_step_and_ends_with_ret()
    {
        await using var host = T.Host(new EchoPlugin(), KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        int id = await T.StartMp(c, 1, "echo", EchoConfig);

        var (err, result) = await T.CallMp(c, 7, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = (double)id, ["EventName"] = "access" });
        Assert.Null(err);
        var step = Assert.IsType<Dictionary<string, object?>>(result);
        var eventId = step["EventId"];
        AssertCallback(step, "kong.request.get_header", "x-in");

        (err, result) = await T.CallMp(c, 8, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = "A" });
        Assert.Null(err);
        AssertCallback(Assert.IsType<Dictionary<string, object?>>(result), "kong.request.get_header", "host");

        (err, result) = await T.CallMp(c, 9, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = "H" });
        Assert.Null(err);
        AssertCallback(Assert.IsType<Dictionary<string, object?>>(result), "kong.service.request.set_header", "x-out", "A@H");

        (err, result) = await T.CallMp(c, 10, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = eventId }); // Data nil
        Assert.Null(err);
        step = Assert.IsType<Dictionary<string, object?>>(result);
        Assert.Equal(eventId, step["EventId"]);
        Assert.Equal("ret", step["Data"]);
        Assert.False(await c.WaitForCloseAsync(T.Quiet));
        Assert.Equal(0, c.BufferedBytes);
        await T.Until(() => host.Server.InFlightEvents == 0, "the event is finished");

        // a finished event id is unknown
        (err, _) = await T.CallMp(c, 11, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = "x" });
        Assert.Contains("not found", Assert.IsType<string>(err));
    }

    private static void AssertCallback(Dictionary<string, object?> step, string method, params string[] args)
    {
        var cb = Assert.IsType<Dictionary<string, object?>>(step["Data"]);
        Assert.Equal(method, cb["Method"]);
        Assert.Equal(args.Cast<object?>().ToList(), Assert.IsType<List<object?>>(cb["Args"]));
    }

    [Fact]
    public async Task ProtoBuf_exit_writes_the_exit_step_and_then_nothing_until_Kong_closes()
    {
        await using var host = T.Host(new EchoPlugin());
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", """{"mode":"exit"}""");
        await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        Assert.Equal("kong.response.exit", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        var exit = ExitArgs.Parser.ParseFrom(await c.ReadFrameAsync().Within());
        Assert.Equal(418, exit.Status);
        Assert.Equal("teapot", exit.Body.ToStringUtf8());
        Assert.Equal("text/plain", exit.Headers.Fields["Content-Type"].StringValue);

        // no end marker, no RpcReturn, no close: the server waits for Kong to drop the connection
        Assert.False(await c.WaitForCloseAsync(T.Quiet));
        Assert.Equal(0, c.BufferedBytes);
        Assert.Equal(1, host.Server.ActiveConnections);
        c.Dispose();
        await T.Until(() => host.Server.ActiveConnections == 0 && host.Server.InFlightEvents == 0, "the server sees EOF and drops the connection");
    }

    [Theory]
    [InlineData("exit", 418)]
    [InlineData("after-exit", 401)]
    public async Task MsgPack_exit_is_the_last_answer_and_ends_the_event(string mode, int status)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        int id = await T.StartMp(c, 1, "echo", $$"""{"mode":"{{mode}}"}""");
        var (err, result) = await T.CallMp(c, 2, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = (double)id, ["EventName"] = "access" });
        Assert.Null(err);
        var cb = Assert.IsType<Dictionary<string, object?>>(Assert.IsType<Dictionary<string, object?>>(result)["Data"]);
        Assert.Equal("kong.response.exit", cb["Method"]);
        Assert.Equal((double)status, Assert.IsType<List<object?>>(cb["Args"])[0]);
        Assert.False(await c.WaitForCloseAsync(T.Quiet));
        Assert.Equal(0, c.BufferedBytes); // nothing after the exit callback
        await T.Until(() => host.Server.InFlightEvents == 0, "the event ended with the exit");
        if (mode != "after-exit") return;
        await T.Until(() => !plugin.PluginSaw.IsEmpty, "the handler went on after the exit");
        Assert.IsType<Kong.PluginServer.Pdk.KongExitedException>(Assert.Single(plugin.PluginSaw));
    }

    [Fact]
    public async Task ProtoBuf_pdk_call_after_exit_raises_in_the_plugin_and_writes_nothing()
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin);
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", """{"mode":"after-exit"}""");
        await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        Assert.Equal("kong.response.exit", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        Assert.Equal(401, ExitArgs.Parser.ParseFrom(await c.ReadFrameAsync().Within()).Status);
        Assert.False(await c.WaitForCloseAsync(T.Quiet));
        Assert.Equal(0, c.BufferedBytes); // neither set_header nor kong.log.err nor an end marker
        Assert.IsType<Kong.PluginServer.Pdk.KongExitedException>(Assert.Single(plugin.PluginSaw));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Exit_ends_the_handler_and_a_later_call_raises_inside_the_plugin(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, protocol);
        var exit = host.Kong.AddPlugin("""{"mode":"exit"}""");
        var r = await host.Kong.Worker(0).RunAsync(exit, "access").Within();
        Assert.Equal(SimOutcome.Exited, r.Outcome);
        Assert.Equal(418, r.Status);
        Assert.Equal("teapot", r.BodyText);
        Assert.Equal("text/plain", r.Exit!.Headers["Content-Type"]);
        Assert.Equal(["kong.response.exit"], r.PdkCalls);

        var after = host.Kong.AddPlugin("""{"mode":"after-exit"}""");
        r = await host.Kong.Worker(0).RunAsync(after, "access").Within();
        Assert.Equal(SimOutcome.Exited, r.Outcome);
        Assert.Equal(401, r.Status);
        Assert.Equal(["kong.response.exit"], r.PdkCalls);   // the late set_header never left the server
        Assert.Null(r.UpstreamHeaders["x-late"]);
        Assert.Empty(r.Logs);                                // not reported as a plugin failure either
        await T.Until(() => !plugin.PluginSaw.IsEmpty, "the handler went on after the exit");
        Assert.IsType<Kong.PluginServer.Pdk.KongExitedException>(Assert.Single(plugin.PluginSaw));
        await T.Until(() => host.Server.InFlightEvents == 0, "the exited events are over (ProtoBuf: once Kong drops the connection)");
    }

    [Fact]
    public async Task ProtoBuf_unknown_instance_closes_the_connection_without_a_byte()
    {
        await using var host = T.Host(new EchoPlugin());
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", EchoConfig);
        int unknown = id == int.MaxValue ? 1 : id + 1;
        await c.SendFrameAsync(KongWire.HandleEvent(3, unknown, "access")).Within();
        Assert.True(await c.WaitForCloseAsync(T.Bound));
        Assert.Equal(0, c.BufferedBytes);
        Assert.Equal(0, host.Server.EventsServed);
    }

    [Fact]
    public async Task MsgPack_unknown_instance_answers_no_plugin_instance_and_keeps_the_connection()
    {
        await using var host = T.Host(new EchoPlugin(), KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        int id = await T.StartMp(c, 1, "echo", EchoConfig);
        int unknown = id == int.MaxValue ? 1 : id + 1;
        var (err, result) = await T.CallMp(c, 2, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = (double)unknown, ["EventName"] = "access" });
        Assert.Equal($"no plugin instance {unknown}", err);
        Assert.Null(result);
        Assert.Equal(0, host.Server.InFlightEvents);
        // same connection, next call works
        Assert.True(await T.StartMp(c, 3, "echo", EchoConfig) > 0);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Unknown_instance_makes_Kong_replay_once_and_the_replay_succeeds(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        var entity = host.Kong.AddPlugin("{}");
        var request = new SimRequest { Headers = { ["x-in"] = "v", ["host"] = "h" } };
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", request).Within();
        Assert.Equal(200, r.Status);
        int old = r.InstanceId!.Value;
        Assert.True(host.Server.Registry.Close(old)); // the server forgets it (as after a restart or expiry)

        r = await host.Kong.Worker(0).RunAsync(entity, "access", request).Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(1, r.Retries);
        Assert.Equal(1, r.InstanceStarts);
        Assert.NotEqual(old, r.InstanceId);
        Assert.Equal("v@h", r.UpstreamHeaders["x-out"]);
        // the refused attempt ran nothing: only the replay's three calls
        Assert.Equal(["kong.request.get_header", "kong.request.get_header", "kong.service.request.set_header"], r.PdkCalls);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Plugin_exception_becomes_log_err_and_a_500_exit(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        foreach (var (mode, message) in new[] { ("throw", "boom"), ("throw-sync", "sync boom") })
        {
            var entity = host.Kong.AddPlugin($$"""{"mode":"{{mode}}"}""");
            var r = await host.Kong.Worker(0).RunAsync(entity, "access").Within();
            Assert.Equal(SimOutcome.Exited, r.Outcome);
            Assert.Equal(0, r.Retries); // not a closed connection: no replay
            Assert.Equal(500, r.Status);
            Assert.Equal(500, r.Exit!.Status);
            Assert.Contains("An unexpected error occurred", r.BodyText);
            var line = Assert.Single(r.Logs);
            Assert.Equal("err", line.Level);
            Assert.Contains(message, line.Message);
            Assert.Contains("InvalidOperationException", line.Message);
        }
    }

    [Fact]
    public async Task ProtoBuf_plugin_exception_does_not_close_the_connection()
    {
        await using var host = T.Host(new EchoPlugin());
        await using var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", """{"mode":"throw"}""");
        await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        await c.ReadFrameAsync().Within();
        await c.SendFrameAsync(PbStringBytes("v")).Within();
        Assert.Equal("kong.log.err", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        await c.ReadFrameAsync().Within();
        Assert.Equal("kong.response.exit", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        Assert.Equal(500, ExitArgs.Parser.ParseFrom(await c.ReadFrameAsync().Within()).Status);
        Assert.False(await c.WaitForCloseAsync(T.Quiet), "a plugin failure must not close the connection");
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Plugin_exception_in_log_completes_the_event_and_the_pooled_connection_is_reused(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        var entity = host.Kong.AddPlugin("""{"mode":"throw"}""");
        var worker = host.Kong.Worker(0);
        for (int i = 0; i < 3; i++)
        {
            var r = await worker.RunAsync(entity, "log").Within();
            Assert.Equal(SimOutcome.Completed, r.Outcome);
            Assert.Equal(0, r.Retries);
            Assert.Null(r.Exit); // no exit in the log phase
            var line = Assert.Single(r.Logs);
            Assert.Equal("err", line.Level);
            Assert.Contains("log boom", line.Message);
        }
        Assert.Equal(1, worker.ConnectionsOpened); // every event after a failure ran on the same pooled connection
        Assert.Equal(1, worker.PooledConnections);
        Assert.Equal(1, host.Server.ActiveConnections);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Async_handler_works(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, protocol);
        var entity = host.Kong.AddPlugin("""{"mode":"slow","header":"x-a"}""");
        var tasks = Enumerable.Range(0, 32).Select(i => host.Kong.Worker(0).RunAsync(entity, "access",
            new SimRequest { Path = $"/p{i}", Headers = { ["x-a"] = $"v{i}" } })).ToArray();
        var results = await Task.WhenAll(tasks).Within();
        for (int i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Status == 200, results[i].ToString());
            Assert.Equal($"v{i}/p{i}", results[i].UpstreamHeaders["x-out"]);
        }
        await T.Until(() => host.Server.InFlightEvents == 0, "all events finished");
        Assert.Equal(32, plugin.ContinuedOn.Count + Volatile.Read(ref plugin.ResultsBeforeAwait));
        // after an async hop the handler awaits a PDK reply without blocking its thread; the reply is received by an
        // event loop and the handler continues there (thread-pool threads never block on Kong: that would starve an
        // in-process Kong)
        // (on MsgPack:1 a result can be in before the await, which then does not suspend: rare, never all 32)
        Assert.NotEmpty(plugin.ContinuedOn);
        Assert.All(plugin.ContinuedOn, name => Assert.StartsWith("kong-io-", name));
    }
}
