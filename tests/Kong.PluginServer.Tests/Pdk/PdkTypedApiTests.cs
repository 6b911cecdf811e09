using Kong.PluginServer.Pdk;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Pdk;

/// <summary>
/// The typed PDK surface through the simulated Kong, on both protocols: one-message log calls, typed header maps,
/// typed kong.ctx.shared, the serving protocol, and the error a twice-awaited PDK result raises.
/// </summary>
public class PdkTypedApiTests
{
    private static async Task<(SimResult Result, Dictionary<string, object?> Bag)> Run(KongProtocol protocol, Func<KongPdk, Dictionary<string, object?>, ValueTask> run,
        SimRequest? request = null, TextWriter? serverLog = null)
    {
        var bag = new Dictionary<string, object?>();
        var plugin = new ScriptPlugin();
        Exception? raised = null;
        plugin.Script = async (phase, kong) =>
        {
            if (phase != KongPhase.Access) return;
            try { await run(kong, bag); }
            catch (Exception e) { raised = e; throw; }
        };
        await using var host = serverLog is null ? T.Host(plugin, protocol) : T.Host(plugin, protocol, configure: o => new ServerOptions
        {
            SocketPath = o.SocketPath, Protocol = o.Protocol, Log = new ServerLog(TextWriter.Synchronized(serverLog), LogLevel.Info),
        });
        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", request ?? new SimRequest()).Within();
        Assert.True(raised is null, $"the plugin got {raised}");
        return (r, bag);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task One_message_log_calls_reach_each_level(KongProtocol protocol)
    {
        var (r, _) = await Run(protocol, async (k, _) =>
        {
            await k.Log.AlertAsync("a ✓");
            await k.Log.CritAsync("c");
            await k.Log.ErrAsync("e");
            await k.Log.WarnAsync("w");
            await k.Log.NoticeAsync("n");
            await k.Log.InfoAsync("i");
            await k.Log.DebugAsync("d");
        });
        Assert.Equal(
            [new("alert", "a ✓"), new("crit", "c"), new("err", "e"), new("warn", "w"), new("notice", "n"), new("info", "i"), new("debug", "d")],
            r.Logs.ToArray<SimLogLine>());
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Typed_header_maps_set_every_value(KongProtocol protocol)
    {
        var (r, _) = await Run(protocol, async (k, _) =>
        {
            IReadOnlyDictionary<string, IReadOnlyList<string>> multi = new Dictionary<string, IReadOnlyList<string>> { ["x-l"] = ["a", "b"] };
            await k.ServiceRequest.SetHeadersAsync(multi);
            await k.ServiceRequest.SetHeadersAsync(new KongMultiMap { ["x-k"] = ["c", "d"] });
            await k.ServiceRequest.SetHeadersAsync(new Dictionary<string, string> { ["x-s"] = "e" });
            await k.Response.SetHeadersAsync(multi);
        });
        Assert.Equal(["a", "b"], r.UpstreamHeaders.GetValues("x-l"));
        Assert.Equal(["c", "d"], r.UpstreamHeaders.GetValues("x-k"));
        Assert.Equal(["e"], r.UpstreamHeaders.GetValues("x-s"));
        Assert.Equal(["a", "b"], r.ResponseHeaders.GetValues("x-l"));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Exit_takes_headers_with_several_values(KongProtocol protocol)
    {
        var (r, _) = await Run(protocol, async (k, _) =>
            await k.Response.ExitAsync(429, "slow down", new Dictionary<string, IReadOnlyList<string>> { ["x-why"] = ["a", "b"] }));
        Assert.Equal(SimOutcome.Exited, r.Outcome);
        Assert.Equal(429, r.Status);
        Assert.Equal(["a", "b"], r.Exit!.Headers.GetValues("x-why"));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Ctx_shared_typed_set(KongProtocol protocol)
    {
        var (r, _) = await Run(protocol, async (k, _) =>
        {
            await k.Ctx.SetSharedAsync("s", "text");
            await k.Ctx.SetSharedAsync("l", 42L);
            await k.Ctx.SetSharedAsync("d", 2.5);
            await k.Ctx.SetSharedAsync("b", true);
        });
        Assert.Equal("text", r.CtxShared["s"]);
        Assert.Equal(42.0, r.CtxShared["l"]);
        Assert.Equal(2.5, r.CtxShared["d"]);
        Assert.Equal(true, r.CtxShared["b"]);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Ctx_shared_typed_get(KongProtocol protocol)
    {
        var request = new SimRequest { CtxShared = { ["s"] = "text", ["l"] = 42.0, ["d"] = 2.5, ["b"] = true } };
        var (_, g) = await Run(protocol, async (k, g) =>
        {
            g["s"] = await k.Ctx.GetSharedStringAsync("s");
            g["l"] = await k.Ctx.GetSharedLongAsync("l");
            g["d"] = await k.Ctx.GetSharedDoubleAsync("d");
            g["b"] = await k.Ctx.GetSharedBoolAsync("b");
            g["d as long"] = await k.Ctx.GetSharedLongAsync("d");
            g["s as bool"] = await k.Ctx.GetSharedBoolAsync("s");
            g["missing"] = await k.Ctx.GetSharedStringAsync("missing");
            g["l as double"] = await k.Ctx.GetSharedDoubleAsync("l");
        }, request);
        Assert.Equal("text", g["s"]);
        Assert.Equal(42L, g["l"]);
        Assert.Equal(2.5, g["d"]);
        Assert.Equal(true, g["b"]);
        Assert.Null(g["d as long"]);   // 2.5 is not an integer
        Assert.Null(g["s as bool"]);
        Assert.Null(g["missing"]);
        Assert.Equal(42.0, g["l as double"]);
    }

    [Theory]
    [InlineData(KongProtocol.ProtoBuf, WireProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack, WireProtocol.MsgPack)]
    public async Task A_plugin_knows_the_protocol_it_is_served_over(KongProtocol protocol, WireProtocol expected)
    {
        var (_, g) = await Run(protocol, (k, g) => { g["p"] = k.Protocol; return ValueTask.CompletedTask; });
        Assert.Equal(expected, g["p"]);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Awaiting_a_PDK_result_twice_says_so(KongProtocol protocol)
    {
        var (_, g) = await Run(protocol, async (k, g) =>
        {
            var call = k.Request.GetMethodAsync();
            g["first"] = await call;
            g["second"] = await Assert.ThrowsAsync<InvalidOperationException>(async () => await call);
            g["after"] = await k.Request.GetPathAsync(); // the session is still usable
        }, new SimRequest { Method = "POST", Path = "/x" });
        Assert.Equal("POST", g["first"]);
        var e = Assert.IsType<InvalidOperationException>(g["second"]);
        Assert.Contains("awaited (or its result read) twice", e.Message);
        Assert.Equal("/x", g["after"]);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_result_never_awaited_is_reported_at_the_end_of_the_event(KongProtocol protocol)
    {
        var log = new StringWriter();
        var (r, _) = await Run(protocol, async (k, bag) =>
        {
            _ = k.Request.GetMethodAsync(); // dropped: never awaited
            await k.ServiceRequest.SetHeaderAsync("x-after", (await k.Request.GetPathAsync()));
        }, serverLog: log);
        Assert.Equal(SimOutcome.Completed, r.Outcome); // the request itself is served
        Assert.Equal("/", r.UpstreamHeaders["x-after"]);
        Assert.Contains("without awaiting 1 PDK call result(s)", log.ToString());
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Every_result_awaited_reports_nothing(KongProtocol protocol)
    {
        var log = new StringWriter();
        await Run(protocol, async (k, _) =>
        {
            var method = k.Request.GetMethodAsync();
            var path = k.Request.GetPathAsync();
            await method;
            await path;
        }, serverLog: log);
        Assert.DoesNotContain("without awaiting", log.ToString());
    }
}
