using System.Text;
using System.Text.Json;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Pdk;

/// <summary>
/// One PDK scenario: the request Kong serves, what the plugin does in <see cref="Phase"/> (recording what it
/// received in a bag), and the checks on what the plugin received and what Kong recorded.
/// </summary>
public sealed record PdkCase(string Name, string Phase, Func<SimRequest> Request, Func<KongPdk, Dictionary<string, object?>, ValueTask> Run,
    Action<SimResult, Dictionary<string, object?>> Check)
{
    /// <summary>Only meaningful on this protocol (null: both).</summary>
    public KongProtocol? Only { get; init; }
    /// <summary>Adjusts the simulated Kong before the event.</summary>
    public Action<KongSimulator>? Setup { get; init; }
    public override string ToString() => Name;
}

/// <summary>
/// Every PDK method's arguments and results round-trip through the simulated Kong, on both protocols: the
/// typed values the plugin gets back equal what Kong served, and what Kong recorded equals what the plugin sent.
/// </summary>
public class PdkRoundTripTests
{
    private const string ConsumerId = "8f2c6a9e-3b1d-4c57-9a0e-1d2f3c4b5a69";
    private const string RouteId = "0b6a7a0e-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
    private const string ServiceId = "1c7b8b1f-2d3e-4f50-9bac-1d2e3f4a5b6c";
    private static readonly byte[] Binary = [0x00, 0xff, 0x80, 0x7f, (byte)'a', 0xc3, 0x28];
    private const string Unicode = "héllo ✓ \"quoted\" \\ /";

    private static void Completed(SimResult r) => Assert.True(r.Outcome == SimOutcome.Completed && r.Error is null, r.ToString());

    private static PdkCase Get<TV>(string name, Func<SimRequest> request, Func<KongPdk, ValueTask<TV>> call, TV expected, string phase = "access") =>
        new(name, phase, request, async (k, g) => g["v"] = await call(k), (r, g) =>
        {
            Completed(r);
            Assert.Equal(expected, Assert.IsType<TV>(g["v"]));
        });

    private static PdkCase Do(string name, string phase, Func<SimRequest> request, Func<KongPdk, Dictionary<string, object?>, ValueTask> run,
        Action<SimResult, Dictionary<string, object?>> check) => new(name, phase, request, run, check);

    private static SimRequest Req() => new();

    private static void AssertMap(object? value, params (string Name, string[] Values)[] expected)
    {
        var map = Assert.IsType<KongMultiMap>(value);
        Assert.Equal(expected.Length, map.Count);
        foreach (var (name, values) in expected) Assert.Equal(values, map[name]);
    }

    private static void AssertConsumer(object? value, string id, string username, string customId, long createdAt, string[] tags)
    {
        var c = Assert.IsType<KongConsumer>(value);
        Assert.Equal(id, c.Id);
        Assert.Equal(username, c.Username);
        Assert.Equal(customId, c.CustomId);
        Assert.Equal(createdAt, c.CreatedAt);
        Assert.Equal(tags, c.Tags);
    }

    private static SimConsumer Alice() => new() { Id = ConsumerId, Username = "alice", CustomId = "a-1", CreatedAt = 1700000001, Tags = ["t1", "t2"] };

    public static readonly IReadOnlyList<PdkCase> All = BuildCases();

    private static List<PdkCase> BuildCases()
    {
        var cases = new List<PdkCase>
        {
            // ------------------------------------------------------------------ kong.client
            Get("client.get_ip", () => new SimRequest { ClientIp = "10.1.2.3" }, k => k.Client.GetIpAsync(), "10.1.2.3"),
            Get("client.get_forwarded_ip", () => new SimRequest { ClientIp = "10.1.2.3", ForwardedIp = "203.0.113.9" }, k => k.Client.GetForwardedIpAsync(), "203.0.113.9"),
            Get("client.get_port", () => new SimRequest { ClientPort = 40123 }, k => k.Client.GetPortAsync(), 40123),
            Get("client.get_forwarded_port", () => new SimRequest { ClientPort = 40123, ForwardedPort = 8443 }, k => k.Client.GetForwardedPortAsync(), 8443),
            Do("client.get_credential", "access", () => new SimRequest { AuthenticatedCredential = new SimCredential { Id = "cred-1", ConsumerId = ConsumerId } },
                async (k, g) => g["v"] = await k.Client.GetCredentialAsync(),
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(new KongCredential("cred-1", ConsumerId), g["v"]);
                }),
            Do("client.get_credential (none)", "access", Req, async (k, g) => g["v"] = await k.Client.GetCredentialAsync(),
                (r, g) => { Completed(r); Assert.Null(g["v"]); }),
            Do("client.load_consumer", "access", () => new SimRequest { Consumers = [Alice()] },
                async (k, g) =>
                {
                    g["id"] = await k.Client.LoadConsumerAsync(ConsumerId);
                    g["name"] = await k.Client.LoadConsumerAsync("alice", byUsername: true);
                    g["missing"] = await k.Client.LoadConsumerAsync(Guid.NewGuid().ToString());
                },
                (r, g) =>
                {
                    Completed(r);
                    AssertConsumer(g["id"], ConsumerId, "alice", "a-1", 1700000001, ["t1", "t2"]);
                    AssertConsumer(g["name"], ConsumerId, "alice", "a-1", 1700000001, ["t1", "t2"]);
                    Assert.Null(g["missing"]);
                }),
            Do("client.get_consumer", "access", () => new SimRequest { AuthenticatedConsumer = Alice() },
                async (k, g) => g["v"] = await k.Client.GetConsumerAsync(),
                (r, g) => { Completed(r); AssertConsumer(g["v"], ConsumerId, "alice", "a-1", 1700000001, ["t1", "t2"]); }),
            Do("client.get_consumer (none)", "access", Req, async (k, g) => g["v"] = await k.Client.GetConsumerAsync(),
                (r, g) => { Completed(r); Assert.Null(g["v"]); }),
            Do("client.authenticate", "access", Req,
                async (k, g) =>
                {
                    await k.Client.AuthenticateAsync(new KongConsumer(ConsumerId, "bob", "b-1", 1700000002, ["x", "y"]), new KongCredential("cred-9", ConsumerId));
                    g["consumer"] = await k.Client.GetConsumerAsync();
                    g["credential"] = await k.Client.GetCredentialAsync();
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.True(r.Authenticated);
                    Assert.Equal(ConsumerId, r.Consumer!.Id);
                    Assert.Equal("bob", r.Consumer.Username);
                    Assert.Equal("b-1", r.Consumer.CustomId);
                    Assert.Equal(1700000002, r.Consumer.CreatedAt);
                    Assert.Equal(["x", "y"], r.Consumer.Tags!);
                    Assert.Equal("cred-9", r.Credential!.Id);
                    Assert.Equal(ConsumerId, r.Credential.ConsumerId);
                    AssertConsumer(g["consumer"], ConsumerId, "bob", "b-1", 1700000002, ["x", "y"]);
                    Assert.Equal(new KongCredential("cred-9", ConsumerId), g["credential"]);
                }),
            Do("client.authenticate (credential only)", "access", Req,
                async (k, _) => await k.Client.AuthenticateAsync(null, new KongCredential("cred-2")),
                (r, _) =>
                {
                    Completed(r);
                    Assert.True(r.Authenticated);
                    Assert.Null(r.Consumer);
                    Assert.Equal("cred-2", r.Credential!.Id);
                }),
            Do("client.get_protocol", "access", () => new SimRequest { Scheme = "http", ForwardedScheme = "https" },
                async (k, g) =>
                {
                    g["plain"] = await k.Client.GetProtocolAsync();
                    g["terminated"] = await k.Client.GetProtocolAsync(allowTerminated: true);
                },
                (r, g) => { Completed(r); Assert.Equal("http", g["plain"]); Assert.Equal("https", g["terminated"]); }),

            // ------------------------------------------------------------------ kong.ctx / kong.ip / kong.node
            Do("ctx.shared.set", "access", Req,
                async (k, _) =>
                {
                    await k.Ctx.SetSharedAsync("s", Unicode);
                    await k.Ctx.SetSharedAsync("n", 42);
                    await k.Ctx.SetSharedAsync("f", 2.5);
                    await k.Ctx.SetSharedAsync("b", true);
                    await k.Ctx.SetSharedAsync("l", new List<object?> { "a", 1 });
                    await k.Ctx.SetSharedAsync("m", new Dictionary<string, object?> { ["k"] = "v", ["n"] = 3 });
                },
                (r, _) =>
                {
                    Completed(r);
                    Assert.Equal(Unicode, r.CtxShared["s"]);
                    Assert.Equal(42.0, r.CtxShared["n"]);
                    Assert.Equal(2.5, r.CtxShared["f"]);
                    Assert.Equal(true, r.CtxShared["b"]);
                    Assert.Equal(new List<object?> { "a", 1.0 }, r.CtxShared["l"]);
                    Assert.Equal(new Dictionary<string, object?> { ["k"] = "v", ["n"] = 3.0 }, r.CtxShared["m"]);
                }),
            Do("ctx.shared.get", "access",
                () => new SimRequest
                {
                    CtxShared =
                    {
                        ["s"] = Unicode, ["n"] = 42.0, ["f"] = 2.5, ["b"] = true,
                        ["l"] = new List<object?> { "a", 1.0 }, ["m"] = new Dictionary<string, object?> { ["k"] = "v", ["n"] = 3.0 },
                    },
                },
                async (k, g) =>
                {
                    foreach (var key in new[] { "s", "n", "f", "b", "l", "m", "missing" }) g[key] = await k.Ctx.GetSharedAsync(key);
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(Unicode, g["s"]);
                    Assert.Equal(42.0, Assert.IsType<double>(g["n"]));
                    Assert.Equal(2.5, Assert.IsType<double>(g["f"]));
                    Assert.Equal(true, g["b"]);
                    Assert.Equal(new List<object?> { "a", 1.0 }, g["l"]);
                    Assert.Equal(new Dictionary<string, object?> { ["k"] = "v", ["n"] = 3.0 }, g["m"]);
                    Assert.Null(g["missing"]);
                }),
            Do("ip.is_trusted", "access", Req,
                async (k, g) =>
                {
                    g["yes"] = await k.Ip.IsTrustedAsync("10.0.0.1");
                    g["no"] = await k.Ip.IsTrustedAsync("10.0.0.2");
                },
                (r, g) => { Completed(r); Assert.Equal(true, g["yes"]); Assert.Equal(false, g["no"]); }) with
            {
                Setup = sim => sim.Options.TrustedIps = ["10.0.0.1"],
            },
            Get("node.get_id", () => new SimRequest { NodeId = "2f1e0d3c-4b5a-4697-8887-766554433221" }, k => k.Node.GetIdAsync(), "2f1e0d3c-4b5a-4697-8887-766554433221"),
            Do("node.get_memory_stats", "access", Req, async (k, g) => g["v"] = await k.Node.GetMemoryStatsAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var m = Assert.IsType<KongMemoryStats>(g["v"]);
                    Assert.Equal(12288, m.KongSlabs);
                    Assert.Equal(5242880, m.KongCapacity);
                    Assert.Equal(12288, m.DbCacheSlabs);
                    Assert.Equal(134217728, m.DbCacheCapacity);
                    Assert.Equal([(Environment.ProcessId, 1024L)], m.Workers);
                }),

            // ------------------------------------------------------------------ kong.log
            Do("log.message", "access", Req, async (k, _) => await k.Log.MessageAsync(PdkMethods.LogWarn, Unicode),
                (r, _) => { Completed(r); Assert.Equal(new SimLogLine("warn", Unicode), Assert.Single(r.Logs)); }),
            Do("log.set_serialize_value", "access", Req,
                async (k, _) =>
                {
                    await k.Log.SetSerializeValueAsync("custom.s", Unicode);
                    await k.Log.SetSerializeValueAsync("custom.n", 7);
                    await k.Log.SetSerializeValueAsync("custom.b", true);
                    await k.Log.SetSerializeValueAsync("custom.l", new[] { "a", "b" });
                    await k.Log.SetSerializeValueAsync("custom.m", new Dictionary<string, string> { ["k"] = "v" });
                },
                (r, _) =>
                {
                    Completed(r);
                    Assert.Equal(Unicode, r.SerializeValues["custom.s"]);
                    Assert.Equal(7.0, r.SerializeValues["custom.n"]);
                    Assert.Equal(true, r.SerializeValues["custom.b"]);
                    Assert.Equal(new List<object?> { "a", "b" }, r.SerializeValues["custom.l"]);
                    Assert.Equal(new Dictionary<string, object?> { ["k"] = "v" }, r.SerializeValues["custom.m"]);
                }),
            Get("log.serialize", () => new SimRequest { SerializeJson = """{"request":{"uri":"/x"},"note":"é"}""" }, k => k.Log.SerializeAsync(),
                """{"request":{"uri":"/x"},"note":"é"}""", phase: "log"),
            Do("log.serialize (built by Kong)", "log",
                () => new SimRequest { Path = "/abc", RawQuery = "q=1", ClientIp = "10.9.8.7", SerializeValues = { ["custom"] = "v" } },
                async (k, g) => g["v"] = await k.Log.SerializeAsync(),
                (r, g) =>
                {
                    Completed(r);
                    using var doc = JsonDocument.Parse(Assert.IsType<string>(g["v"]));
                    Assert.Equal("/abc?q=1", doc.RootElement.GetProperty("request").GetProperty("uri").GetString());
                    Assert.Equal("10.9.8.7", doc.RootElement.GetProperty("client_ip").GetString());
                    Assert.Equal("v", doc.RootElement.GetProperty("custom").GetString());
                }),

            // ------------------------------------------------------------------ kong.nginx
            Do("nginx.get_var", "access", () => new SimRequest { NginxVars = { ["request_id"] = "req-42" } },
                async (k, g) => { g["v"] = await k.Nginx.GetVarAsync("request_id"); g["missing"] = await k.Nginx.GetVarAsync("nope"); },
                (r, g) => { Completed(r); Assert.Equal("req-42", g["v"]); Assert.Equal("", g["missing"]); }),
            Get("nginx.get_tls1_version_str", () => new SimRequest { TlsVersion = "TLSv1.3" }, k => k.Nginx.GetTls1VersionStrAsync(), "TLSv1.3"),
            Get("nginx.get_tls1_version_str (plain http)", Req, k => k.Nginx.GetTls1VersionStrAsync(), ""),
            Do("nginx.set_ctx", "access", Req,
                async (k, _) => { await k.Nginx.SetCtxAsync("k", Unicode); await k.Nginx.SetCtxAsync("n", 2); },
                (r, _) => { Completed(r); Assert.Equal(Unicode, r.NgxCtx["k"]); Assert.Equal(2.0, r.NgxCtx["n"]); }),
            Do("nginx.get_ctx", "access", () => new SimRequest { NgxCtx = { ["k"] = "v", ["n"] = 5.0 } },
                async (k, g) => { g["k"] = await k.Nginx.GetCtxAsync("k"); g["n"] = await k.Nginx.GetCtxAsync("n"); g["missing"] = await k.Nginx.GetCtxAsync("x"); },
                (r, g) => { Completed(r); Assert.Equal("v", g["k"]); Assert.Equal(5.0, Assert.IsType<double>(g["n"])); Assert.Null(g["missing"]); }),
            Get("nginx.req_start_time", () => new SimRequest { StartTime = 1700000000.25 }, k => k.Nginx.ReqStartTimeAsync(), 1700000000.25),
            Get("nginx.get_subsystem", Req, k => k.Nginx.GetSubsystemAsync(), "http"),

            // ------------------------------------------------------------------ kong.request
            Get("request.get_scheme", () => new SimRequest { Scheme = "https" }, k => k.Request.GetSchemeAsync(), "https"),
            Get("request.get_host", () => new SimRequest { Host = "api.example" }, k => k.Request.GetHostAsync(), "api.example"),
            Get("request.get_port", () => new SimRequest { Port = 8443 }, k => k.Request.GetPortAsync(), 8443),
            Get("request.get_forwarded_scheme", () => new SimRequest { Scheme = "http", ForwardedScheme = "https" }, k => k.Request.GetForwardedSchemeAsync(), "https"),
            Get("request.get_forwarded_host", () => new SimRequest { Host = "internal", ForwardedHost = "edge.example" }, k => k.Request.GetForwardedHostAsync(), "edge.example"),
            Get("request.get_forwarded_port", () => new SimRequest { Port = 8000, ForwardedRequestPort = 443 }, k => k.Request.GetForwardedPortAsync(), 443),
            Get("request.get_http_version", () => new SimRequest { HttpVersion = 2.0 }, k => k.Request.GetHttpVersionAsync(), 2.0),
            Get("request.get_http_version (1.1)", () => new SimRequest { HttpVersion = 1.1 }, k => k.Request.GetHttpVersionAsync(), 1.1),
            Get("request.get_method", () => new SimRequest { Method = "PATCH" }, k => k.Request.GetMethodAsync(), "PATCH"),
            Get("request.get_path", () => new SimRequest { Path = "/a/b", RawQuery = "x=1" }, k => k.Request.GetPathAsync(), "/a/b"),
            Get("request.get_path_with_query", () => new SimRequest { Path = "/a/b", RawQuery = "x=1&y=2" }, k => k.Request.GetPathWithQueryAsync(), "/a/b?x=1&y=2"),
            Get("request.get_raw_query", () => new SimRequest { RawQuery = "x=1&y=%20" }, k => k.Request.GetRawQueryAsync(), "x=1&y=%20"),
            Do("request.get_query_arg", "access", () => new SimRequest { RawQuery = "x=1&y=a%20b&y=2" },
                async (k, g) => { g["x"] = await k.Request.GetQueryArgAsync("x"); g["y"] = await k.Request.GetQueryArgAsync("y"); g["z"] = await k.Request.GetQueryArgAsync("z"); },
                (r, g) => { Completed(r); Assert.Equal("1", g["x"]); Assert.Equal("a b", g["y"]); Assert.Equal("", g["z"]); }),
            Do("request.get_query", "access", () => new SimRequest { RawQuery = "x=1&y=2&y=3&debug&e=" },
                async (k, g) => { g["all"] = await k.Request.GetQueryAsync(); g["two"] = await k.Request.GetQueryAsync(2); },
                (r, g) =>
                {
                    Completed(r);
                    AssertMap(g["all"], ("x", ["1"]), ("y", ["2", "3"]), ("debug", []), ("e", [""]));
                    AssertMap(g["two"], ("x", ["1"]), ("y", ["2"])); // max = 2 arguments
                }),
            Do("request.get_header", "access", () => new SimRequest { Headers = { ["X-Token"] = Unicode, ["x-dup"] = "first" } },
                async (k, g) =>
                {
                    g["v"] = await k.Request.GetHeaderAsync("x-token");
                    g["upper"] = await k.Request.GetHeaderAsync("X-TOKEN");
                    g["missing"] = await k.Request.GetHeaderAsync("x-missing");
                    g["utf8"] = (await k.Request.GetHeaderUtf8Async("x-token")).ToArray();
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(Unicode, g["v"]);
                    Assert.Equal(Unicode, g["upper"]);
                    Assert.Equal("", g["missing"]);
                    Assert.Equal(Encoding.UTF8.GetBytes(Unicode), g["utf8"]);
                }),
            Do("request.get_headers", "access",
                () => new SimRequest { Headers = { { "X-A", "1" }, { "x-b", "2" }, { "X-B", "3" }, { "host", "h" } } },
                async (k, g) =>
                {
                    g["all"] = await k.Request.GetHeadersAsync();
                    g["two"] = await k.Request.GetHeadersAsync(2);
                    var view = await k.Request.GetHeadersViewAsync();
                    g["view.count"] = view.Count("X-b");
                    g["view.first"] = Encoding.UTF8.GetString(view.First("x-B"));
                    g["view.missing"] = view.Contains("x-c");
                },
                (r, g) =>
                {
                    Completed(r);
                    AssertMap(g["all"], ("x-a", ["1"]), ("x-b", ["2", "3"]), ("host", ["h"]));
                    AssertMap(g["two"], ("x-a", ["1"]), ("x-b", ["2"])); // max = 2 header lines
                    Assert.Equal(2, g["view.count"]);
                    Assert.Equal("2", g["view.first"]);
                    Assert.Equal(false, g["view.missing"]);
                }),
            Do("request.get_raw_body", "access", () => new SimRequest { Body = Binary },
                async (k, g) => g["v"] = await k.Request.GetRawBodyAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var b = Assert.IsType<KongRawBody>(g["v"]);
                    Assert.Equal(Binary, b.Content);
                    Assert.Null(b.FilePath);
                    Assert.Null(b.Error);
                }),
            Do("request.get_raw_body (empty)", "access", Req, async (k, g) => g["v"] = await k.Request.GetRawBodyAsync(),
                (r, g) => { Completed(r); Assert.Equal([], Assert.IsType<KongRawBody>(g["v"]).Content!); }),
            Do("request.get_raw_body (in a file)", "access", () => new SimRequest { BodyFilePath = "/var/lib/nginx/body/0000000001" },
                async (k, g) => g["v"] = await k.Request.GetRawBodyAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var b = Assert.IsType<KongRawBody>(g["v"]);
                    Assert.Null(b.Content);
                    Assert.Equal("/var/lib/nginx/body/0000000001", b.FilePath);
                }) with { Only = KongProtocol.ProtoBuf }, // MsgPack cannot carry Kong's (nil, err): Kong's packer raises
            Do("request.get_uri_captures", "access",
                () => new SimRequest { UriCaptures = ["v1", "42"], NamedUriCaptures = { ["version"] = "v1", ["id"] = "42" } },
                async (k, g) => g["v"] = await k.Request.GetUriCapturesAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var c = Assert.IsType<KongUriCaptures>(g["v"]);
                    Assert.Equal(["v1", "42"], c.Unnamed.Select(Encoding.UTF8.GetString));
                    Assert.Equal(2, c.Named.Count);
                    Assert.Equal("v1", Encoding.UTF8.GetString(c.Named["version"]));
                    Assert.Equal("42", Encoding.UTF8.GetString(c.Named["id"]));
                }),
            Do("request getters in the log phase", "log", () => new SimRequest { Headers = { ["x-a"] = "1" } },
                async (k, g) => { g["h"] = await k.Request.GetHeaderAsync("x-a"); g["all"] = await k.Request.GetHeadersAsync(); },
                (r, g) => { Completed(r); Assert.Equal("1", g["h"]); AssertMap(g["all"], ("x-a", ["1"])); }),

            // ------------------------------------------------------------------ kong.response
            Do("response getters (response phase)", "response",
                () => new SimRequest { ResponseStatus = 201, ResponseHeaders = { { "X-Up", "u" }, { "x-m", "a" }, { "x-m", "b" } }, ResponseSource = "service" },
                async (k, g) =>
                {
                    g["status"] = await k.Response.GetStatusAsync();
                    g["header"] = await k.Response.GetHeaderAsync("x-up");
                    g["missing"] = await k.Response.GetHeaderAsync("x-none");
                    g["headers"] = await k.Response.GetHeadersAsync();
                    g["source"] = await k.Response.GetSourceAsync();
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(201, g["status"]);
                    Assert.Equal("u", g["header"]);
                    Assert.Equal("", g["missing"]);
                    AssertMap(g["headers"], ("x-up", ["u"]), ("x-m", ["a", "b"]));
                    Assert.Equal("service", g["source"]);
                }),
            Do("response getters (log phase, after an exit)", "log",
                () => new SimRequest { ResponseStatus = 403, ResponseHeaders = { ["x-reason"] = "r" }, ResponseSource = "exit" },
                async (k, g) =>
                {
                    g["status"] = await k.Response.GetStatusAsync();
                    g["header"] = await k.Response.GetHeaderAsync("X-Reason");
                    g["headers"] = await k.Response.GetHeadersAsync();
                    g["source"] = await k.Response.GetSourceAsync();
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(403, g["status"]);
                    Assert.Equal("r", g["header"]);
                    AssertMap(g["headers"], ("x-reason", ["r"]));
                    Assert.Equal("exit", g["source"]);
                }),
            Do("response.set_status", "access", Req, async (k, _) => await k.Response.SetStatusAsync(204),
                (r, _) => { Completed(r); Assert.Equal(204, r.ResponseStatusSet); Assert.Equal(204, r.Status); }),
            Do("response.set_header", "access", () => new SimRequest { ResponseHeaders = { ["x-r"] = "old" } },
                async (k, _) => await k.Response.SetHeaderAsync("X-R", Unicode),
                (r, _) => { Completed(r); Assert.Equal([Unicode], r.ResponseHeaders.GetValues("x-r")); }),
            Do("response.add_header", "access", () => new SimRequest { ResponseHeaders = { ["x-r"] = "0" } },
                async (k, _) => { await k.Response.AddHeaderAsync("x-r", "a"); await k.Response.AddHeaderAsync("x-r", "b"); },
                (r, _) => { Completed(r); Assert.Equal(["0", "a", "b"], r.ResponseHeaders.GetValues("x-r")); }),
            Do("response.clear_header", "access", () => new SimRequest { ResponseHeaders = { ["x-gone"] = "1", ["x-stay"] = "2" } },
                async (k, _) => await k.Response.ClearHeaderAsync("X-Gone"),
                (r, _) => { Completed(r); Assert.Null(r.ResponseHeaders["x-gone"]); Assert.Equal("2", r.ResponseHeaders["x-stay"]); }),
            Do("response.set_headers", "access", Req,
                async (k, _) =>
                {
                    await k.Response.SetHeadersAsync(new Dictionary<string, string[]> { ["x-m"] = ["a", "b"] });
                    await k.Response.SetHeadersAsync(new Dictionary<string, string> { ["x-s"] = "c" });
                },
                (r, _) => { Completed(r); Assert.Equal(["a", "b"], r.ResponseHeaders.GetValues("x-m")); Assert.Equal("c", r.ResponseHeaders["x-s"]); }),
            Do("response.exit", "access", Req,
                async (k, _) => await k.Response.ExitAsync(403, Unicode, new Dictionary<string, string> { ["X-Reason"] = "r", ["Content-Type"] = "text/plain" }),
                (r, _) =>
                {
                    Assert.Equal(SimOutcome.Exited, r.Outcome);
                    Assert.Equal(403, r.Status);
                    Assert.Equal(Unicode, r.Exit!.BodyText);
                    Assert.Equal("r", r.Exit.Headers["X-Reason"]);
                    Assert.Equal("text/plain", r.Exit.Headers["Content-Type"]);
                    Assert.Equal(2, r.Exit.Headers.Count);
                }),
            Do("response.exit (status only)", "access", Req, async (k, _) => await k.Response.ExitAsync(204),
                (r, _) =>
                {
                    Assert.Equal(SimOutcome.Exited, r.Outcome);
                    Assert.Equal(204, r.Status);
                    Assert.Empty(r.Exit!.Body);
                    Assert.Equal(0, r.Exit.Headers.Count);
                }),

            // ------------------------------------------------------------------ kong.router
            Do("router.get_route", "access",
                () => new SimRequest
                {
                    Route = new SimRoute
                    {
                        Id = RouteId, Name = "r1", CreatedAt = 1700000003, UpdatedAt = 1700000004, Protocols = ["https"], Methods = ["GET", "POST"],
                        Hosts = ["api.example"], Paths = ["/v1"], Tags = ["rt"], StripPath = false, PreserveHost = true, RegexPriority = 3,
                        HttpsRedirectStatusCode = 301, ServiceId = ServiceId,
                    },
                },
                async (k, g) => g["v"] = await k.Router.GetRouteAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var route = Assert.IsType<KongRoute>(g["v"]);
                    Assert.Equal(RouteId, route.Id);
                    Assert.Equal("r1", route.Name);
                    Assert.Equal(1700000003, route.CreatedAt);
                    Assert.Equal(1700000004, route.UpdatedAt);
                    Assert.Equal(["https"], route.Protocols);
                    Assert.Equal(["GET", "POST"], route.Methods);
                    Assert.Equal(["api.example"], route.Hosts);
                    Assert.Equal(["/v1"], route.Paths);
                    Assert.Equal(["rt"], route.Tags);
                    Assert.False(route.StripPath);
                    Assert.True(route.PreserveHost);
                    Assert.Equal(3, route.RegexPriority);
                    Assert.Equal(301, route.HttpsRedirectStatusCode);
                    Assert.Equal(ServiceId, route.ServiceId);
                }),
            Do("router.get_route (none)", "access", Req, async (k, g) => g["v"] = await k.Router.GetRouteAsync(),
                (r, g) => { Completed(r); Assert.Null(g["v"]); }),
            Do("router.get_service", "access",
                () => new SimRequest
                {
                    Service = new SimService
                    {
                        Id = ServiceId, Name = "s1", CreatedAt = 1700000005, UpdatedAt = 1700000006, Retries = 3, Protocol = "https",
                        Host = "up.example", Port = 8443, Path = "/base", ConnectTimeout = 1000, WriteTimeout = 2000, ReadTimeout = 3000, Tags = ["st"],
                    },
                },
                async (k, g) => g["v"] = await k.Router.GetServiceAsync(),
                (r, g) =>
                {
                    Completed(r);
                    var s = Assert.IsType<KongService>(g["v"]);
                    Assert.Equal(ServiceId, s.Id);
                    Assert.Equal("s1", s.Name);
                    Assert.Equal(1700000005, s.CreatedAt);
                    Assert.Equal(1700000006, s.UpdatedAt);
                    Assert.Equal(3, s.Retries);
                    Assert.Equal("https", s.Protocol);
                    Assert.Equal("up.example", s.Host);
                    Assert.Equal(8443, s.Port);
                    Assert.Equal("/base", s.Path);
                    Assert.Equal(1000, s.ConnectTimeout);
                    Assert.Equal(2000, s.WriteTimeout);
                    Assert.Equal(3000, s.ReadTimeout);
                    Assert.Equal(["st"], s.Tags);
                }),
            Do("router.get_service (none)", "access", Req, async (k, g) => g["v"] = await k.Router.GetServiceAsync(),
                (r, g) => { Completed(r); Assert.Null(g["v"]); }),

            // ------------------------------------------------------------------ kong.service
            Do("service.set_upstream", "access", Req, async (k, g) => g["v"] = await k.Service.SetUpstreamAsync("my-upstream"),
                (r, g) => { Completed(r); Assert.Equal(true, g["v"]); Assert.Equal("my-upstream", r.Upstream.UpstreamName); }),
            Do("service.set_target", "access", Req, async (k, _) => await k.Service.SetTargetAsync("10.0.0.5", 8080),
                (r, _) => { Completed(r); Assert.Equal("10.0.0.5", r.Upstream.TargetHost); Assert.Equal(8080, r.Upstream.TargetPort); }),

            // ------------------------------------------------------------------ kong.service.request
            Do("service.request.set_scheme", "access", Req, async (k, _) => await k.ServiceRequest.SetSchemeAsync("https"),
                (r, _) => { Completed(r); Assert.Equal("https", r.Upstream.Scheme); }),
            Do("service.request.set_path", "access", () => new SimRequest { Path = "/old" }, async (k, _) => await k.ServiceRequest.SetPathAsync("/new/ä"),
                (r, _) => { Completed(r); Assert.Equal("/new/ä", r.Upstream.Path); }),
            Do("service.request.set_raw_query", "access", Req, async (k, _) => await k.ServiceRequest.SetRawQueryAsync("a=1&b=%20"),
                (r, _) => { Completed(r); Assert.Equal("a=1&b=%20", r.Upstream.RawQuery); }),
            Do("service.request.set_method", "access", Req, async (k, _) => await k.ServiceRequest.SetMethodAsync("POST"),
                (r, _) => { Completed(r); Assert.Equal("POST", r.Upstream.Method); }),
            Do("service.request.set_query", "access", () => new SimRequest { RawQuery = "old=1" },
                async (k, _) => await k.ServiceRequest.SetQueryAsync(new Dictionary<string, object?> { ["a"] = "1", ["b"] = new[] { "x", "y" }, ["f"] = true }),
                (r, _) => { Completed(r); Assert.Equal("a=1&b=x&b=y&f", r.Upstream.RawQuery); }),
            Do("service.request.set_header", "access", () => new SimRequest { Headers = { ["x-u"] = "old" } },
                async (k, _) => await k.ServiceRequest.SetHeaderAsync("X-U", Unicode),
                (r, _) => { Completed(r); Assert.Equal([Unicode], r.UpstreamHeaders.GetValues("x-u")); }),
            Do("service.request.add_header", "access", () => new SimRequest { Headers = { ["x-u"] = "0" } },
                async (k, _) => { await k.ServiceRequest.AddHeaderAsync("x-u", "a"); await k.ServiceRequest.AddHeaderAsync("x-u", "b"); },
                (r, _) => { Completed(r); Assert.Equal(["0", "a", "b"], r.UpstreamHeaders.GetValues("x-u")); }),
            Do("service.request.clear_header", "access", () => new SimRequest { Headers = { ["authorization"] = "Bearer t", ["x-keep"] = "k" } },
                async (k, _) => await k.ServiceRequest.ClearHeaderAsync("Authorization"),
                (r, _) => { Completed(r); Assert.Null(r.UpstreamHeaders["authorization"]); Assert.Equal("k", r.UpstreamHeaders["x-keep"]); }),
            Do("service.request.set_headers", "access", () => new SimRequest { Headers = { ["x-s"] = "old" } },
                async (k, _) =>
                {
                    await k.ServiceRequest.SetHeadersAsync(new Dictionary<string, string[]> { ["x-m"] = ["a", "b"] });
                    await k.ServiceRequest.SetHeadersAsync(new Dictionary<string, string> { ["x-s"] = "c", ["x-n"] = "1" });
                },
                (r, _) =>
                {
                    Completed(r);
                    Assert.Equal(["a", "b"], r.UpstreamHeaders.GetValues("x-m"));
                    Assert.Equal(["c"], r.UpstreamHeaders.GetValues("x-s"));
                    Assert.Equal("1", r.UpstreamHeaders["x-n"]);
                }),
            Do("service.request.set_raw_body", "access", () => new SimRequest { Body = [1, 2, 3] },
                async (k, _) => await k.ServiceRequest.SetRawBodyAsync(Encoding.UTF8.GetBytes(Unicode)),
                (r, _) => { Completed(r); Assert.Equal(Encoding.UTF8.GetBytes(Unicode), r.Upstream.Body); }),
            Do("service.request.set_raw_body (binary)", "access", Req,
                async (k, _) => await k.ServiceRequest.SetRawBodyAsync(Binary),
                (r, _) => { Completed(r); Assert.Equal(Binary, r.Upstream.Body); }) with { Only = KongProtocol.ProtoBuf }, // the simulator's msgpack strings are text

            // ------------------------------------------------------------------ kong.service.response
            Do("service.response getters", "response",
                () => new SimRequest { ResponseStatus = 502, ResponseHeaders = { { "X-Up", "u" }, { "x-m", "a" }, { "x-m", "b" } }, ResponseBody = Binary },
                async (k, g) =>
                {
                    g["status"] = await k.ServiceResponse.GetStatusAsync();
                    g["header"] = await k.ServiceResponse.GetHeaderAsync("x-up");
                    g["headers"] = await k.ServiceResponse.GetHeadersAsync();
                    g["body"] = await k.ServiceResponse.GetRawBodyAsync();
                },
                (r, g) =>
                {
                    Completed(r);
                    Assert.Equal(502, g["status"]);
                    Assert.Equal("u", g["header"]);
                    AssertMap(g["headers"], ("x-up", ["u"]), ("x-m", ["a", "b"]));
                    Assert.Equal(Binary, g["body"]);
                }),
        };

        foreach (var level in new[] { "alert", "crit", "err", "warn", "notice", "info", "debug" })
        {
            cases.Add(Do("log." + level, "access", Req,
                async (k, _) =>
                {
                    object?[] items = ["msg ", 1, true, 2.5, Unicode];
                    await (level switch
                    {
                        "alert" => k.Log.AlertAsync(items),
                        "crit" => k.Log.CritAsync(items),
                        "err" => k.Log.ErrAsync(items),
                        "warn" => k.Log.WarnAsync(items),
                        "notice" => k.Log.NoticeAsync(items),
                        "info" => k.Log.InfoAsync(items),
                        _ => k.Log.DebugAsync(items),
                    });
                },
                (r, _) => { Completed(r); Assert.Equal(new SimLogLine(level, "msg 1true2.5" + Unicode), Assert.Single(r.Logs)); }));
        }
        return cases;
    }

    public static TheoryData<KongProtocol, string> CaseNames()
    {
        var data = new TheoryData<KongProtocol, string>();
        foreach (var p in new[] { KongProtocol.ProtoBuf, KongProtocol.MsgPack })
            foreach (var c in All)
                if (c.Only is null || c.Only == p) data.Add(p, c.Name);
        return data;
    }

    private static async Task<SimResult> RunCase(PluginTestHost host, ScriptPlugin plugin, PluginEntity entity, PdkCase c)
    {
        var bag = new Dictionary<string, object?>();
        Exception? raised = null;
        plugin.Script = async (phase, kong) =>
        {
            if (KongPhases.Name(phase) != c.Phase) return;
            try { await c.Run(kong, bag); }
            catch (Exception e) { raised = e; throw; }
        };
        c.Setup?.Invoke(host.Kong);
        var r = await host.Kong.Worker(0).RunAsync(entity, c.Phase, c.Request()).Within();
        Assert.True(raised is null, $"{c.Name}: the plugin got {raised}");
        c.Check(r, bag);
        return r;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Round_trip(KongProtocol protocol, string name)
    {
        var plugin = new ScriptPlugin();
        await using var host = T.Host(plugin, protocol);
        var entity = host.Kong.AddPlugin("{}");
        await RunCase(host, plugin, entity, All.Single(c => c.Name == name));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Every_pdk_method_is_exercised(KongProtocol protocol)
    {
        Assert.Equal(All.Count, All.Select(c => c.Name).Distinct().Count());
        var plugin = new ScriptPlugin();
        await using var host = T.Host(plugin, protocol);
        var entity = host.Kong.AddPlugin("{}");
        var called = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in All.Where(c => c.Only is null || c.Only == protocol))
        {
            var r = await RunCase(host, plugin, entity, c);
            called.UnionWith(r.PdkCalls);
        }
        Assert.Equal(PdkMethods.All.Select(m => m.Name).Order(), called.Order());
        Assert.Equal(KongWire.PdkMethods.Order(), called.Order()); // and that is the simulator's (the proto's) list
        await T.Until(() => host.Server.InFlightEvents == 0, "every event is over");
    }
}
