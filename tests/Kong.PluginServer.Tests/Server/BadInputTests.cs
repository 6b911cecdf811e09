using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using PbString = Kong.PluginServer.Protocol.ProtoBuf.Messages.String;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Hostile or broken input closes only the connection that sent it; probes and EOFs leave nothing behind.</summary>
public class BadInputTests
{
    private const int MaxFrame = 4096;

    private static PluginTestHost Host(KongProtocol protocol, EchoPlugin? plugin = null) =>
        T.Host(plugin ?? new EchoPlugin(), protocol, workers: 4, configure: o => o.With(maxFrameBytes: MaxFrame));

    private static byte[] Le(uint n)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, n);
        return b;
    }

    public static TheoryData<KongProtocol, string> Cases => new()
    {
        { KongProtocol.ProtoBuf, "oversized frame" },
        { KongProtocol.ProtoBuf, "garbage protobuf" },
        { KongProtocol.ProtoBuf, "truncated frame then EOF" },
        { KongProtocol.ProtoBuf, "truncated header then EOF" },
        { KongProtocol.ProtoBuf, "unknown command" },
        { KongProtocol.ProtoBuf, "call without a command" },
        { KongProtocol.ProtoBuf, "unknown event name" },
        { KongProtocol.ProtoBuf, "wrong wire type" },
        { KongProtocol.MsgPack, "oversized message" },
        { KongProtocol.MsgPack, "malformed msgpack" },
        { KongProtocol.MsgPack, "non-array request" },
        { KongProtocol.MsgPack, "array of the wrong size" },
        { KongProtocol.MsgPack, "response instead of a request" },
        { KongProtocol.MsgPack, "params not an array" },
        { KongProtocol.MsgPack, "truncated message then EOF" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_input_closes_that_connection_while_64_concurrent_requests_succeed(KongProtocol protocol, string bad)
    {
        await using var host = Host(protocol);
        var entity = host.Kong.AddPlugin("{}");

        var good = Enumerable.Range(0, 64).Select(i => Task.Run(() => host.Kong.Worker(i % 4).RunAsync(entity, "access",
            new SimRequest { Headers = { ["x-in"] = $"r{i}", ["host"] = "h" } }))).ToArray();
        var misbehave = Task.Run(() => Misbehave(host, protocol, bad));

        var (closed, received) = await misbehave.Within();
        Assert.True(closed, $"{bad}: the server must close the connection");
        Assert.Equal(0, received);
        var results = await Task.WhenAll(good).Within();
        for (int i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Status == 200, results[i].ToString());
            Assert.Equal(0, results[i].Retries);
            Assert.Equal($"r{i}@h", results[i].UpstreamHeaders["x-out"]);
        }
        await T.Until(() => host.Server.InFlightEvents == 0, "no event left in flight");

        // and the server is as good as new
        var after = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "z", ["host"] = "h" } }).Within();
        Assert.Equal("z@h", after.UpstreamHeaders["x-out"]);
    }

    /// <summary>Opens its own connection, misbehaves; returns whether the server closed it and the bytes it sent back.</summary>
    private static async Task<(bool Closed, int Received)> Misbehave(PluginTestHost host, KongProtocol protocol, string bad)
    {
        using var s = await T.RawSocket(host);
        async Task Send(params byte[][] parts)
        {
            foreach (var p in parts)
            {
                try { await s.SendAsync(p, SocketFlags.None).WaitAsync(T.Bound); }
                catch (SocketException) { return; } // the server may close before everything is written: fine
            }
        }
        if (protocol == KongProtocol.ProtoBuf)
        {
            switch (bad)
            {
                case "oversized frame":
                    // rejected from the length alone, then read to its end without being kept (Kong's send completes), then closed
                    await Send(Le(MaxFrame + 1), new byte[MaxFrame + 1]);
                    break;
                case "garbage protobuf":
                    await Send(KongWire.Frame(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }));
                    break;
                case "truncated frame then EOF":
                    await Send(Le(100), KongWire.StartInstance(2, "echo", "{}").ToByteArray());
                    s.Shutdown(SocketShutdown.Send);
                    break;
                case "truncated header then EOF":
                    await Send(new byte[] { 0x10, 0x00 });
                    s.Shutdown(SocketShutdown.Send);
                    break;
                case "unknown command": // RpcCall{sequence=2, field 40 = {}}
                    await Send(KongWire.Frame(new byte[] { 0x08, 0x02, 0xc2, 0x02, 0x00 }));
                    break;
                case "call without a command":
                    await Send(KongWire.Frame(new byte[] { 0x08, 0x02 }));
                    break;
                case "unknown event name":
                {
                    // a real instance, then an event nginx phase Kong never sends to plugin servers
                    await Send(KongWire.Frame(KongWire.StartInstance(2, "echo", "{}")));
                    var (id, ok) = await ReadInstanceId(s);
                    if (!ok) return (false, -1);
                    await Send(KongWire.Frame(KongWire.HandleEvent(3, id, "header_filter")));
                    break;
                }
                case "wrong wire type": // sequence as a length-delimited field
                    await Send(KongWire.Frame(new byte[] { 0x0a, 0x01, 0x02, 0xa2, 0x02, 0x00 }));
                    break;
                default: throw new ArgumentException(bad);
            }
        }
        else
        {
            switch (bad)
            {
                case "oversized message": // bin32 of 1 MiB where the method name goes, then the params: passed over unbuffered, then closed
                    await Send(new byte[] { 0x94, 0x00, 0x01, 0xc6, 0x00, 0x10, 0x00, 0x00 }, new byte[1 << 20], new byte[] { 0x90 });
                    break;
                case "malformed msgpack": // 0xc1 is never used
                    await Send(new byte[] { 0x94, 0x00, 0x01, 0xc1, 0x90 });
                    break;
                case "non-array request":
                    await Send(KongWire.EncodeMsgPack(new Dictionary<string, object?> { ["method"] = "plugin.StartInstance" }));
                    break;
                case "array of the wrong size":
                    await Send(KongWire.EncodeMsgPack(new List<object?> { 0.0, 1.0, "plugin.GetStatus" }));
                    break;
                case "response instead of a request":
                    await Send(KongWire.EncodeMsgPack(new List<object?> { 1.0, 1.0, null, null }));
                    break;
                case "params not an array":
                    await Send(KongWire.EncodeMsgPack(new List<object?> { 0.0, 1.0, "plugin.StartInstance", "x" }));
                    break;
                case "truncated message then EOF":
                    var full = KongWire.MsgPackRequest(1, "plugin.StartInstance", new Dictionary<string, object?> { ["Name"] = "echo", ["Config"] = "{}" });
                    await Send(full[..(full.Length / 2)]);
                    s.Shutdown(SocketShutdown.Send);
                    break;
                default: throw new ArgumentException(bad);
            }
        }
        var (closed, n) = await T.ReadToClose(s);
        return (closed, n);
    }

    private static async Task<(int Id, bool Ok)> ReadInstanceId(Socket s)
    {
        var header = new byte[4];
        if (!await ReadExact(s, header)) return (0, false);
        var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header)];
        if (!await ReadExact(s, body)) return (0, false);
        return (RpcReturn.Parser.ParseFrom(body).InstanceStatus.InstanceId, true);
    }

    private static async Task<bool> ReadExact(Socket s, byte[] buf)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).AsTask().WaitAsync(T.Bound);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    [Fact]
    public async Task ProtoBuf_a_PDK_result_over_the_maximum_fails_the_call_not_the_connection()
    {
        await using var host = Host(KongProtocol.ProtoBuf);
        var entity = host.Kong.AddPlugin("{}");
        // the header value makes Kong's get_header result larger than --max-frame-bytes: read and dropped unbuffered,
        // the awaiting call fails, the handler's failure answers 500, and the event ends normally (no replay)
        var big = await host.Kong.Worker(0).RunAsync(entity, "access",
            new SimRequest { Headers = { ["x-in"] = new string('v', MaxFrame * 2), ["host"] = "h" } }).Within();
        Assert.True(big.Status == 500 && big.Outcome == SimOutcome.Exited, big.ToString());
        Assert.Equal(0, big.Retries);
        // the exit ends that connection (Kong's doing); the next event is served as usual, without a replay
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "ok", ["host"] = "h" } }).Within();
        Assert.Equal("ok@h", r.UpstreamHeaders["x-out"]);
        Assert.Equal(0, r.Retries);
    }

    [Fact]
    public async Task MsgPack_a_PDK_result_over_the_maximum_fails_the_call_not_the_request()
    {
        await using var host = Host(KongProtocol.MsgPack);
        var entity = host.Kong.AddPlugin("{}");
        // as on ProtoBuf: the Step carrying the result is passed over unbuffered, the awaiting call fails, the handler's
        // failure answers 500. Closing the connection instead would make Kong let the request through (MsgPack:1 fails open)
        foreach (int size in new[] { MaxFrame * 2, MaxFrame * 64 }) // arriving whole, and passed over in pieces
        {
            var big = await host.Kong.Worker(0).RunAsync(entity, "access",
                new SimRequest { Headers = { ["x-in"] = new string('v', size), ["host"] = "h" } }).Within();
            Assert.True(big.Status == 500 && big.Outcome == SimOutcome.Exited, big.ToString());
            Assert.Equal(0, big.Retries);
        }
        await T.Until(() => host.Server.InFlightEvents == 0, "the failed events ended");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "ok", ["host"] = "h" } }).Within();
        Assert.Equal("ok@h", r.UpstreamHeaders["x-out"]);
        Assert.Equal(0, r.Retries);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task MsgPack_an_oversized_Step_is_answered_with_an_exit_whichever_key_comes_first(bool eventIdFirst)
    {
        await using var host = Host(KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        int id = await T.StartMp(c, 1, "echo", "{}");
        var (err, result) = await T.CallMp(c, 2, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = id, ["EventName"] = "access" });
        Assert.Null(err);
        var step = Assert.IsType<Dictionary<string, object?>>(result);
        int eventId = (int)Assert.IsType<double>(step["EventId"]);
        Assert.IsType<Dictionary<string, object?>>(step["Data"]); // the handler's first PDK call, awaiting its result

        // Kong's Lua may order the map either way; the result is far over --max-frame-bytes
        var big = new string('v', MaxFrame * 16);
        var param = eventIdFirst
            ? new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = big }
            : new Dictionary<string, object?> { ["Data"] = big, ["EventId"] = eventId };
        (err, result) = await T.CallMp(c, 3, "plugin.Step", param);
        // the failed call's handler answers 500 (after the call it queued before the failure and the failure's
        // kong.log.err, which Kong answers as usual): the event was found, whichever key came first
        var methods = new List<string>();
        int msgId = 3;
        while (true)
        {
            Assert.Null(err);
            var answer = Assert.IsType<Dictionary<string, object?>>(Assert.IsType<Dictionary<string, object?>>(result)["Data"]);
            if (answer["Method"] is "kong.response.exit")
            {
                Assert.Equal(500.0, Assert.IsType<List<object?>>(answer["Args"])[0]);
                Assert.Contains("kong.log.err", methods); // the handler's failure, not the fallback exit
                break;
            }
            methods.Add(Assert.IsType<string>(answer["Method"]));
            Assert.True(msgId < 8, "the exit comes after the calls queued before the failure: " + string.Join(", ", methods));
            (err, result) = await T.CallMp(c, ++msgId, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = "h" });
        }

        // the connection stays in service: the next request on it is answered
        (err, result) = await T.CallMp(c, ++msgId, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = id, ["EventName"] = "access" });
        Assert.Null(err);
        Assert.IsType<Dictionary<string, object?>>(result);
    }

    [Fact]
    public async Task MsgPack_an_oversized_Step_of_an_unknown_event_is_still_answered_with_a_500_exit()
    {
        await using var host = Host(KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        var (err, result) = await T.CallMp(c, 1, "plugin.Step",
            new Dictionary<string, object?> { ["Data"] = new string('v', MaxFrame * 4), ["EventId"] = 987654 });
        Assert.Null(err);
        var answer = Assert.IsType<Dictionary<string, object?>>(Assert.IsType<Dictionary<string, object?>>(result)["Data"]);
        Assert.Equal("kong.response.exit", answer["Method"]);
        Assert.Equal(500.0, Assert.IsType<List<object?>>(answer["Args"])[0]);
    }

    [Fact]
    public async Task MsgPack_another_oversized_request_gets_an_error_and_the_connection_stays()
    {
        await using var host = Host(KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        var (err, _) = await T.CallMp(c, 1, "plugin.StartInstance", new Dictionary<string, object?> { ["Name"] = "echo", ["Config"] = new string(' ', MaxFrame * 4) + "{}" });
        Assert.Contains("exceeds --max-frame-bytes", Assert.IsType<string>(err));
        Assert.True(await T.StartMp(c, 2, "echo", "{}") > 0);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Thousands_of_connect_and_close_probes_are_harmless(KongProtocol protocol)
    {
        await using var host = Host(protocol);
        // Kong 3.1-3.4 probes the socket by connecting and closing. Each prober waits for the server to close
        // its side too, so the probes go as fast as the server takes them (and never overflow the listen backlog).
        const int Probers = 8, ProbesEach = 250;
        await Task.WhenAll(Enumerable.Range(0, Probers).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < ProbesEach; i++)
            {
                using var s = await T.RawSocket(host);
                s.Shutdown(SocketShutdown.Send);
                var (closed, received) = await T.ReadToClose(s);
                Assert.True(closed && received == 0, "a probe gets nothing and is closed");
            }
        }))).Within();
        for (int i = 0; i < 100; i++) (await T.Connect(host)).Dispose(); // plain connect-and-close
        await T.Until(() => host.Server.ActiveConnections == 0, "every probe connection is gone");

        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "p", ["host"] = "h" } }).Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("p@h", r.UpstreamHeaders["x-out"]);
        await T.Until(() => host.Server.EventsServed == 1, "the one event is counted: probes are not events");
        host.Kong.Dispose(); // drop the pooled connection
        await T.Until(() => host.Server.ActiveConnections == 0, "the pooled connection is gone");
        Assert.Equal(0, host.Server.InFlightEvents);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task The_server_never_closes_an_idle_connection(KongProtocol protocol)
    {
        await using var host = Host(protocol);
        await using var c = await T.Connect(host);
        int id = await T.Start(protocol, c, "echo", "{}");
        Assert.False(await c.WaitForCloseAsync(TimeSpan.FromSeconds(1.5)), "idle is not a reason to close");
        Assert.Equal(0, c.BufferedBytes);
        if (protocol == KongProtocol.ProtoBuf)
        {
            await c.SendFrameAsync(KongWire.HandleEvent(3, id, "rewrite")).Within();
            Assert.Equal(new byte[] { 0, 0, 0, 0, 2, 0, 0, 0, 0x08, 0x03 }, await c.ReadExactAsync(10).Within());
        }
        else
        {
            var (err, result) = await T.CallMp(c, 2, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = (double)id, ["EventName"] = "rewrite" });
            Assert.Null(err);
            Assert.Equal("ret", Assert.IsType<Dictionary<string, object?>>(result)["Data"]);
        }
    }

    public static TheoryData<string> EofPoints =>
    [
        "before the StartInstance reply is read",
        "right after HandleEvent",
        "while the server waits for a PDK reply",
        "inside a PDK reply frame header",
        "inside a PDK reply frame body",
        "after the first of two replies",
        "before the setter's reply",
        "after kong.response.exit",
    ];

    [Theory]
    [MemberData(nameof(EofPoints))]
    public async Task ProtoBuf_EOF_at_any_point_of_an_event_cleans_up(string point)
    {
        await using var host = Host(KongProtocol.ProtoBuf);
        var c = await T.Connect(host);
        try
        {
            if (point == "before the StartInstance reply is read")
            {
                await c.SendFrameAsync(KongWire.StartInstance(2, "echo", "{}")).Within();
                return;
            }
            int id = await T.StartPb(c, 2, "echo", point == "after kong.response.exit" ? """{"mode":"exit"}""" : "{}");
            await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
            if (point == "right after HandleEvent") return;
            for (int i = 0; i < 2; i++) await c.ReadFrameAsync().Within();
            if (point == "after kong.response.exit") return;
            for (int i = 0; i < 2; i++) await c.ReadFrameAsync().Within();
            await T.Until(() => host.Server.InFlightEvents == 1, "the event is running");
            switch (point)
            {
                case "while the server waits for a PDK reply": return;
                case "inside a PDK reply frame header": await c.SendRawAsync(new byte[] { 3, 0 }).Within(); return;
                case "inside a PDK reply frame body": await c.SendRawAsync(new byte[] { 3, 0, 0, 0, 0x0a }).Within(); return;
            }
            await c.SendFrameAsync(new PbString { V = "a" }.ToByteArray()).Within();
            if (point == "after the first of two replies") return;
            await c.SendFrameAsync(new PbString { V = "h" }.ToByteArray()).Within();
            Assert.Equal("kong.service.request.set_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
            Assert.Equal("before the setter's reply", point);
        }
        finally
        {
            c.Dispose();
            await T.Until(() => host.Server.InFlightEvents == 0 && host.Server.ActiveConnections == 0, $"cleanup after EOF {point}");
        }
        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "x", ["host"] = "h" } }).Within();
        Assert.Equal("x@h", r.UpstreamHeaders["x-out"]);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task EOF_while_the_handler_runs_cleans_up_once_it_returns(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = Host(protocol, plugin);
        var c = await T.Connect(host);
        int id = await T.Start(protocol, c, "echo", """{"mode":"gate"}""");
        if (protocol == KongProtocol.ProtoBuf)
            await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        else
            await c.SendMsgPackRequestAsync(2, "plugin.HandleEvent", new Dictionary<string, object?> { ["InstanceId"] = (double)id, ["EventName"] = "access" }).Within();
        await plugin.Entered.Task.Within();
        Assert.Equal(1, host.Server.InFlightEvents);
        c.Dispose(); // Kong gives up (timeout, client gone) while the handler is still working

        if (protocol == KongProtocol.MsgPack)
            // the HandleEvent call can never be answered: the event is abandoned at once
            await T.Until(() => host.Server.InFlightEvents == 0, "the abandoned MsgPack event is dropped");
        plugin.Gate.SetResult();
        await T.Until(() => host.Server.InFlightEvents == 0 && host.Server.ActiveConnections == 0, "cleanup after the handler returned");

        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "y", ["host"] = "h" } }).Within();
        Assert.Equal("y@h", r.UpstreamHeaders["x-out"]);
    }

    [Fact]
    public async Task ProtoBuf_EOF_during_an_async_hop_cleans_up()
    {
        await using var host = Host(KongProtocol.ProtoBuf);
        var c = await T.Connect(host);
        int id = await T.StartPb(c, 2, "echo", """{"mode":"slow"}""");
        await c.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await c.ReadFrameAsync().Within()));
        await c.ReadFrameAsync().Within();
        await c.SendFrameAsync(new PbString { V = "a" }.ToByteArray()).Within();
        c.Dispose(); // during the handler's Task.Delay: its next call meets a closed connection
        await T.Until(() => host.Server.InFlightEvents == 0 && host.Server.ActiveConnections == 0, "cleanup");
    }
}
