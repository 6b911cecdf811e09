using System.Text;

namespace Kong.PluginServer.Testing.Tests;

/// <summary>MsgPack:1: Kong's lua-MessagePack bytes and the one-call-per-checkout RPC, against the in-test fake server.</summary>
public class MsgPackSimulatorTests
{
    private static KongSimulator Kong(FakeMpServer server, int workers = 1) =>
        new(server.SocketPath, KongProtocol.MsgPack, "py-hello", workers, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(10) });

    [Theory]
    [InlineData(31, "bf")]
    [InlineData(32, "da0020")]
    [InlineData(40, "da0028")]      // never str8 (d9)
    [InlineData(255, "da00ff")]
    [InlineData(70000, "db00011170")]
    public void Strings_use_string_compat(int length, string header)
    {
        var bytes = KongWire.EncodeMsgPack(new string('a', length));
        Assert.Equal(header, Hex.Of(bytes.AsSpan(0, header.Length / 2)));
        Assert.Equal(header.Length / 2 + length, bytes.Length);
    }

    [Theory]
    [InlineData(0.0, "00")]
    [InlineData(127.0, "7f")]
    [InlineData(128.0, "cc80")]
    [InlineData(65535.0, "cdffff")]
    [InlineData(65536.0, "ce00010000")]
    [InlineData(4294967296.0, "cf0000000100000000")]
    [InlineData(-1.0, "ff")]
    [InlineData(-32.0, "e0")]
    [InlineData(-33.0, "d0df")]
    [InlineData(-40000.0, "d2ffff63c0")]
    [InlineData(3.0, "03")]
    [InlineData(1.5, "cb3ff8000000000000")]
    public void Numbers_are_ints_when_integral_else_float64(double value, string hex) =>
        Assert.Equal(hex, Hex.Of(KongWire.EncodeMsgPack(value)));

    [Fact]
    public void Tables_nil_and_booleans()
    {
        Assert.Equal("90", Hex.Of(KongWire.EncodeMsgPack(new List<object?>())));
        Assert.Equal("90", Hex.Of(KongWire.EncodeMsgPack(new Dictionary<string, object?>()))); // empty table -> empty array
        Assert.Equal("c0", Hex.Of(KongWire.EncodeMsgPack(null)));
        Assert.Equal("c3", Hex.Of(KongWire.EncodeMsgPack(true)));
        Assert.Equal("81a16101", Hex.Of(KongWire.EncodeMsgPack(new Dictionary<string, object?> { ["a"] = 1.0, ["nil"] = null })));
        Assert.Equal("92a178c2", Hex.Of(KongWire.EncodeMsgPack(new List<object?> { "x", false })));
        Assert.Equal(Hex.Of(Hex.Parse("94 00 07 ac 'plugin.Close' 91 2a")), Hex.Of(KongWire.MsgPackRequest(7, "plugin.Close", 42.0)));
    }

    [Fact]
    public async Task One_call_per_checkout_with_typed_step_methods()
    {
        var consumerId = Guid.NewGuid().ToString();
        await using var server = new FakeMpServer
        {
            Handler = async ev =>
            {
                Assert.Equal("Bearer x", await ev.CallAsync("kong.request.get_header", "authorization"));
                await ev.CallAsync("kong.request.get_headers");
                await ev.CallAsync("kong.request.get_raw_body");
                var consumer = await ev.CallAsync("kong.client.load_consumer", consumerId);
                await ev.CallAsync("kong.client.authenticate", consumer, null);
                await ev.CallAsync("kong.request.get_query");
                await ev.CallAsync("kong.request.get_header", "absent");
            },
        };
        await using var kong = Kong(server);
        kong.Consumers.Add(new SimConsumer { Id = consumerId, Username = "alice" });
        var entity = kong.AddPlugin();
        var r = await kong.RunAsync(entity, "access", new SimRequest
        {
            Headers = { { "Authorization", "Bearer x" }, { "X-Tag", "1" }, { "x-tag", new string('v', 40) } },
            Body = Encoding.UTF8.GetBytes("raw"),
        });
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(7, r.RoundTrips);
        Assert.Equal("alice", r.Consumer!.Username);

        var reqs = server.Requests.ToArray();
        Assert.Equal(new[]
        {
            "plugin.StartInstance", "plugin.HandleEvent", "plugin.Step", "plugin.StepMultiMap", "plugin.Step",
            "plugin.StepConsumer", "plugin.StepCredential", "plugin.StepMultiMap", "plugin.Step",
        }, reqs.Select(q => q.Method));
        Assert.Equal(Enumerable.Range(1, reqs.Length).Select(i => (long)i), reqs.Select(q => q.MsgId)); // msgid from 1, echoed
        Assert.Equal(1, server.Connections); // every call checks the pooled connection out and back in
        Assert.All(reqs, q => Assert.Single(q.Params));

        // header map: name -> array of strings; a 40-byte value is str16 (da 00 28), never str8
        var headers = (Dictionary<string, object?>)((Dictionary<string, object?>)reqs[3].Params[0]!)["Data"]!;
        Assert.Equal(new List<object?> { "Bearer x" }, headers["authorization"]);
        Assert.Equal(new List<object?> { "1", new string('v', 40) }, headers["x-tag"]);
        Assert.Contains("da0028" + Hex.Of(Encoding.ASCII.GetBytes(new string('v', 40))), Hex.Of(reqs[3].Raw));
        // raw body as bin
        Assert.Equal(Encoding.UTF8.GetBytes("raw"), ((Dictionary<string, object?>)reqs[4].Params[0]!)["Data"]);
        Assert.Contains("c403" + Hex.Of(Encoding.ASCII.GetBytes("raw")), Hex.Of(reqs[4].Raw));
        // empty query map forced to an empty map
        Assert.Contains(Hex.Of(Hex.Parse("a4 'Data' 80")), Hex.Of(reqs[7].Raw));
        // nil result: the Data key is missing
        var last = (Dictionary<string, object?>)reqs[8].Params[0]!;
        Assert.False(last.ContainsKey("Data"));
        Assert.Equal(Hex.Of(Hex.Parse("94 00 09 ab 'plugin.Step' 91 81 a7 'EventId' 01")), Hex.Of(reqs[8].Raw));
    }

    [Fact]
    public async Task Query_flags_become_empty_arrays()
    {
        await using var server = new FakeMpServer { Handler = async ev => await ev.CallAsync("kong.request.get_query", 10.0) };
        await using var kong = Kong(server);
        await kong.RunAsync(kong.AddPlugin(), "access", new SimRequest { RawQuery = "debug&a=1&a=2" });
        var data = (Dictionary<string, object?>)((Dictionary<string, object?>)server.Requests.Last().Params[0]!)["Data"]!;
        Assert.Equal(new List<object?>(), data["debug"]);
        Assert.Equal(new List<object?> { "1", "2" }, data["a"]);
    }

    [Fact]
    public async Task Notification_before_the_response_is_tolerated_and_a_new_pid_resets_instances()
    {
        long pid = 100;
        await using var server = new FakeMpServer
        {
            Before = _ => FakeMpServer.Encode(new List<object?> { 2L, "serverPid", Interlocked.Read(ref pid) }),
            Handler = async ev => await ev.CallAsync("kong.request.get_method"),
        };
        await using var kong = Kong(server);
        var entity = kong.AddPlugin();
        var a = await kong.RunAsync(entity, "access");
        var b = await kong.RunAsync(entity, "access");
        Assert.Equal(SimOutcome.Completed, a.Outcome);
        Assert.Equal(0, b.InstanceStarts);
        Interlocked.Exchange(ref pid, 200);
        var c = await kong.RunAsync(entity, "access"); // the pid change arrives with the HandleEvent answer
        var d = await kong.RunAsync(entity, "access");
        Assert.Equal(SimOutcome.Completed, c.Outcome);
        Assert.Equal(1, d.InstanceStarts);
    }

    [Fact]
    public async Task No_plugin_instance_replays_the_event()
    {
        await using var server = new FakeMpServer();
        await using var kong = Kong(server);
        var entity = kong.AddPlugin();
        await kong.RunAsync(entity, "access");
        server.Instances.Clear();
        var r = await kong.RunAsync(entity, "access");
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal(1, r.Retries);
        Assert.Equal(new[] { "plugin.HandleEvent", "plugin.StartInstance", "plugin.HandleEvent" }, r.Rpcs.Select(x => x.Command));
    }

    [Theory]
    [InlineData("boom")]
    [InlineData("connection closed")] // "closed" is not retried for MsgPack
    public async Task Other_errors_fail_open(string error)
    {
        await using var server = new FakeMpServer { ErrorFor = q => q.Method == "plugin.HandleEvent" ? error : null };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.FailedOpen, r.Outcome);
        Assert.Equal(200, r.Status);
        Assert.Equal(error, r.Error);
        Assert.Equal(0, r.Retries);
    }

    [Fact]
    public async Task Exit_gets_no_step_and_the_connection_stays_pooled()
    {
        await using var server = new FakeMpServer
        {
            Handler = async ev => await ev.ExitAsync(403, "denied", new Dictionary<string, object?> { ["X-Why"] = "policy" }),
        };
        await using var kong = Kong(server);
        var entity = kong.AddPlugin();
        var r = await kong.RunAsync(entity, "access");
        Assert.Equal(SimOutcome.Exited, r.Outcome);
        Assert.Equal(403, r.Status);
        Assert.Equal("denied", r.Exit!.BodyText);
        Assert.Equal("policy", r.Exit.Headers["x-why"]);
        Assert.Equal("plugin.HandleEvent", server.Requests.Last().Method);
        var again = await kong.RunAsync(entity, "access");
        Assert.Equal(403, again.Status);
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public async Task A_raise_fails_the_request_with_500()
    {
        await using var server = new FakeMpServer { Handler = async ev => await ev.CallAsync("kong.response.get_status") };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Equal("function cannot be called in access phase", r.Error);
    }

    [Fact]
    public async Task Unknown_methods_return_nil_and_bytes_after_a_response_are_dropped()
    {
        await using var server = new FakeMpServer
        {
            After = _ => new byte[] { 0xc1, 0xc1 }, // junk after every response, in the same write
            Handler = async ev =>
            {
                Assert.Null(await ev.CallAsync("kong.nope.nothing"));
                Assert.Equal("GET", await ev.CallAsync("kong.request.get_method"));
            },
        };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Contains("[error] could not find pdk method: kong.nope.nothing", r.KongLog);
    }

    [Fact]
    public async Task Response_error_is_reachable_through_MsgPack()
    {
        await using var server = new FakeMpServer { Handler = async ev => await ev.CallAsync("kong.response.error", 401L) };
        await using var kong = Kong(server);
        var r = await kong.RunAsync(kong.AddPlugin(), "access");
        Assert.Equal(401, r.Status);
        Assert.Equal("{\"message\":\"Unauthorized\"}", r.Exit!.BodyText);
    }
}
