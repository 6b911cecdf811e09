using System.Text;
using System.Text.Json.Nodes;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.Tokens;

/// <summary>One binary per protocol for the whole class (tokens and configs vary per test, the server does not).</summary>
public sealed class HostileTokenRigs : IAsyncLifetime
{
    private readonly Dictionary<KongProtocol, (BinaryRig Rig, KongSimulator Kong)> _rigs = new();

    public (BinaryRig Rig, KongSimulator Kong) this[KongProtocol p] => _rigs[p];

    public async Task InitializeAsync()
    {
        foreach (var p in new[] { KongProtocol.ProtoBuf, KongProtocol.MsgPack })
        {
            // tokens of up to max_token_bytes (65536) and a 1 MiB header pass nginx only with raised header buffers;
            // a deployment that raises them raises --max-frame-bytes too (docs/protocol.md#frame-sizes)
            var rig = await BinaryRig.StartAsync(p, "error", "--max-frame-bytes", "4194304");
            _rigs[p] = (rig, rig.Simulator());
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var (rig, kong) in _rigs.Values)
        {
            await kong.DisposeAsync();
            await rig.DisposeAsync();
        }
    }
}

/// <summary>
/// Hostile tokens and claims through the plugin in the published binary: header splitting through claim values,
/// enormous values and arrays, deep nesting, duplicate JSON members, <c>crit</c>, numeric overflows in the time claims,
/// claims that look like policy patterns, invalid UTF-8. The answer is always a precise refusal or a sanitized allow.
/// </summary>
public sealed class HostileTokenTests(HostileTokenRigs rigs, ITestOutputHelper output) : IClassFixture<HostileTokenRigs>
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private (BinaryRig Rig, KongSimulator Kong, PluginEntity Entity) Route(KongProtocol protocol, Action<JsonObject>? edit = null)
    {
        var (rig, kong) = rigs[protocol];
        return (rig, kong, kong.AddPlugin(rig.ConfigJson(edit)));
    }

    private static async Task<SimResult> RunAsync(KongSimulator kong, PluginEntity entity, string? authorization, string method = "GET")
    {
        var r = new SimRequest { Method = method, Path = "/deploy", Host = "api.test" };
        r.Headers["host"] = "api.test";
        if (authorization is not null) r.Headers["authorization"] = authorization;
        return await kong.Worker(0).RunAsync(entity, "access", r).WaitAsync(Bounds.Hang);
    }

    private static string Code(SimResult r)
    {
        if (r.Outcome == SimOutcome.Completed && r.Status == 200 && r.Exit is null) return "allowed";
        if (r.Exit is null) return $"failed {r.Status}";
        using var body = System.Text.Json.JsonDocument.Parse(r.Exit.Body);
        return body.RootElement.TryGetProperty("code", out var code) ? $"{r.Exit.Status} {code.GetString()}" : $"{r.Exit.Status} ({body.RootElement})";
    }

    /// <summary>A token signed by the issuer's current key whose payload is exactly <paramref name="payloadJson"/>.</summary>
    private static string SignedRaw(BinaryRig rig, string payloadJson) => rig.Minter.Ci().BuildWithRawPayload(Encoding.UTF8.GetBytes(payloadJson));

    /// <summary>The minter's full CI payload with <paramref name="extraMembers"/> appended (raw JSON, may repeat members).</summary>
    private static string PayloadWith(BinaryRig rig, string extraMembers, params string[] remove)
    {
        var b = rig.Minter.Ci();
        foreach (var r in remove) b.Remove(r);
        return b.PayloadJson[..^1] + extraMembers + "}";
    }

    private static bool IsUnsafe(char c) => c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c is '\u2028' or '\u2029';

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Claim_values_cannot_split_or_smuggle_upstream_headers(KongProtocol protocol)
    {
        var (rig, kong, entity) = Route(protocol);
        var token = rig.Minter.Mint(b => b
            .Set("project_path", "acme/x\r\nX-Injected: 1")
            .Set("namespace_path", "acme\nplatform")
            .Set("ref", "main\u2028evil\u2029")
            .Set("environment", "prod\u0000x")
            .Set("user_login", "jdoe\u0085\u009b")
            .Set("job_id", "31415926\t\u007f")
            .Set("sha", "caf\u00e9-\u4e2d-\U0001F600"));
        var r = await RunAsync(kong, entity, "Bearer " + token);

        Assert.Equal("allowed", Code(r));
        foreach (var (name, value) in r.UpstreamHeaders.Where(h => h.Key.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase)))
            Assert.False(value.Any(IsUnsafe), $"{name}: {value}");
        Assert.False(r.UpstreamHeaders.Contains("X-Injected"));
        // a value that would need cleaning is not sent at all: a cleaned value could name something else
        foreach (var dropped in new[] { "X-GitLab-Project-Path", "X-GitLab-Namespace-Path", "X-GitLab-Ref", "X-GitLab-Environment",
                     "X-GitLab-User-Login", "X-GitLab-Job-Id" })
            Assert.False(r.UpstreamHeaders.Contains(dropped), dropped);
        Assert.Equal("caf\u00e9-\u4e2d-\U0001F600", r.UpstreamHeaders["X-GitLab-Sha"]); // printable non-ASCII is kept, whole
        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
    }

    [Fact]
    public async Task Group_and_credential_names_built_from_claims_carry_no_control_characters()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf, c => c["authenticated_groups"] = new JsonArray("project:{project_id}", "ref:{ref}"));
        var token = rig.Minter.Mint(b => b.Set("project_id", "16234\r\nX-Injected: 1").Set("ref", "main\u2028\u0000"));
        var r = await RunAsync(kong, entity, "Bearer " + token);
        Assert.Equal("allowed", Code(r));
        // names built from unfit values are not built at all (no group, no credential), never cleaned into another name
        Assert.False(r.NgxCtx.ContainsKey("authenticated_groups"));
        Assert.Null(r.Credential?.Id);

        var mixed = rig.Minter.Mint(b => b.Set("ref", "main\u2028\u0000"));
        r = await RunAsync(kong, entity, "Bearer " + mixed);
        var groups = Assert.IsType<List<object?>>(r.NgxCtx["authenticated_groups"]).Cast<string>().ToArray();
        Assert.Equal(["project:16234"], groups);
        Assert.Equal("gitlab-project-16234", r.Credential?.Id);
    }

    [Fact]
    public async Task Enormous_claim_values_and_arrays_are_bounded_and_oversized_tokens_are_token_too_large()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf);
        var (_, _, big) = Route(KongProtocol.ProtoBuf, c => c["max_token_bytes"] = 65536);

        // within the default 8192 bytes: a 4500-character path and a 300-element array claim
        var long1 = rig.Minter.Mint(b => b.Set("project_path", new string('p', 4500)));
        Assert.True(long1.Length <= 8192, long1.Length.ToString());
        var r = await RunAsync(kong, entity, "Bearer " + long1);
        Assert.Equal("allowed", Code(r));
        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Project-Path")); // over 512: removed, never cut
        var array = rig.Minter.Mint(b => b.Set("groups_direct", Enumerable.Range(0, 300).Select(i => "g" + i).ToArray()).Set("ref", new[] { "a", "b" }));
        r = await RunAsync(kong, entity, "Bearer " + array);
        Assert.Equal("allowed", Code(r));
        Assert.Equal("a,b", r.UpstreamHeaders["X-GitLab-Ref"]); // an array claim as a header: its elements joined

        // with max_token_bytes 65536: a 40000-character claim passes; the header is removed, the record capped
        var long2 = rig.Minter.Mint(b => b.Set("project_path", new string('q', 40_000)));
        r = await RunAsync(kong, big, "Bearer " + long2);
        Assert.Equal("allowed", Code(r));
        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Project-Path"));

        // beyond: token_too_large before any parsing, signed or not, including a 1 MiB header
        Assert.Equal("401 token_too_large", Code(await RunAsync(kong, entity, "Bearer " + rig.Minter.Mint(b => b.Set("x", new string('x', 8200))))));
        Assert.Equal("401 token_too_large", Code(await RunAsync(kong, big, "Bearer " + rig.Minter.Mint(b => b.Set("x", new string('x', 70_000))))));
        Assert.Equal("401 token_too_large", Code(await RunAsync(kong, entity, "Bearer " + new string('A', 1 << 20))));
    }

    [Fact]
    public async Task Deeply_nested_json_is_token_malformed()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf, c => c["max_token_bytes"] = 65536);
        string Nested(int depth) => new string('[', depth) + new string(']', depth);
        Assert.Equal("allowed", Code(await RunAsync(kong, entity, "Bearer " + rig.Minter.Mint(b => b.Set("x", new RawJson(Nested(14)))))));
        foreach (var depth in new[] { 17, 100, 20_000 })
            Assert.Equal("401 token_malformed", Code(await RunAsync(kong, entity, "Bearer " + rig.Minter.Mint(b => b.Set("x", new RawJson(Nested(depth)))))));
        var deepHeader = rig.Minter.Ci().BuildWithRawHeader(Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"{rig.GitLab.CiKey.Kid}\",\"x\":{Nested(40)}}}"));
        Assert.Equal("401 token_malformed", Code(await RunAsync(kong, entity, "Bearer " + deepHeader)));
    }

    [Fact]
    public async Task Duplicate_json_members_are_token_malformed_even_when_signed()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf);
        var issuer = rig.GitLab.Issuer;
        var cases = new Dictionary<string, string>
        {
            ["iss twice, ours last"] = SignedRaw(rig, PayloadWith(rig, ",\"iss\":\"" + issuer + "\"", "iss").Replace("{", "{\"iss\":\"https://evil.example\",", StringComparison.Ordinal)),
            ["iss twice, ours first"] = SignedRaw(rig, PayloadWith(rig, ",\"iss\":\"https://evil.example\"")),
            ["project_id twice"] = SignedRaw(rig, PayloadWith(rig, ",\"project_id\":\"1\"")),
            ["exp twice"] = SignedRaw(rig, PayloadWith(rig, ",\"exp\":99999999999")),
            ["aud twice"] = SignedRaw(rig, PayloadWith(rig, ",\"aud\":\"https://other.example\"")),
            ["kid twice in the header"] = rig.Minter.Ci().BuildWithRawHeader(Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"other\",\"kid\":\"{rig.GitLab.CiKey.Kid}\"}}")),
            ["alg twice in the header"] = rig.Minter.Ci().BuildWithRawHeader(Encoding.UTF8.GetBytes($"{{\"alg\":\"none\",\"alg\":\"RS256\",\"kid\":\"{rig.GitLab.CiKey.Kid}\"}}")),
        };
        foreach (var (name, token) in cases)
            Assert.True(Code(await RunAsync(kong, entity, "Bearer " + token)) == "401 token_malformed", name);
    }

    [Fact]
    public async Task Crit_header_is_refused_whatever_it_lists()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf);
        foreach (var crit in new object?[] { new[] { "exp" }, Array.Empty<string>(), "b64", null })
            Assert.Equal("401 token_malformed", Code(await RunAsync(kong, entity, "Bearer " + rig.Minter.Mint(b => b.Header("crit", crit)))));
    }

    public static TheoryData<string, string, string> TimeClaimOverflows => new()
    {
        { "exp", "1e400", "401 token_malformed" },
        { "exp", "-1e400", "401 token_malformed" },
        { "exp", "99999999999999999999", "401 token_malformed" },
        { "exp", "9007199254740993", "401 token_malformed" },
        { "exp", "253402300800", "401 token_malformed" },          // after 9999-12-31
        { "exp", "1.7976931348623157e308", "401 token_malformed" },
        { "exp", "-1", "401 token_malformed" },
        { "exp", "\"4102444800\"", "401 token_malformed" },          // a string
        { "exp", "true", "401 token_malformed" },
        { "exp", "[4102444800]", "401 token_malformed" },
        { "exp", "{\"v\":4102444800}", "401 token_malformed" },
        { "exp", "null", "401 claim_missing" },
        { "exp", "0", "401 token_expired" },
        { "exp", "-0", "401 token_expired" },
        { "exp", "1e-400", "401 token_expired" },
        { "iat", "1e400", "401 token_malformed" },
        { "iat", "-5", "401 token_malformed" },
        { "nbf", "1e400", "401 token_malformed" },
        { "nbf", "\"0\"", "401 token_malformed" },
    };

    [Theory]
    [MemberData(nameof(TimeClaimOverflows))]
    public async Task Numeric_overflows_in_time_claims_are_refused_with_a_precise_code(string claim, string rawJson, string expected)
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf);
        var token = rig.Minter.Mint(b => b.Set(claim, new RawJson(rawJson)));
        Assert.Equal(expected, Code(await RunAsync(kong, entity, "Bearer " + token)));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Claims_that_look_like_policy_patterns_are_matched_as_literal_text(KongProtocol protocol)
    {
        var (rig, kong, exact) = Route(protocol, c => c["rules"] = JsonNode.Parse("""[{"name":"billing","claims":{"project_path":["acme/platform/billing-api"]}}]"""));
        foreach (var v in new[] { "*", "**", "re:.*", "re:^acme/platform/billing-api$", "acme/platform/*", "acme/**", "!x", "\\*", "acme/platform/billing-api*", "?" })
            Assert.True(Code(await RunAsync(kong, exact, "Bearer " + rig.Minter.Mint(b => b.Set("project_path", v)))) == "403 no_rule_matched", v);
        Assert.Equal("allowed", Code(await RunAsync(kong, exact, "Bearer " + rig.Minter.Mint())));

        var regex = kong.AddPlugin(rig.ConfigJson(c => c["rules"] = JsonNode.Parse("""[{"name":"main","claims":{"ref":["re:^main$"]}}]""")));
        foreach (var v in new[] { "re:^main$", ".*", "main\n", "^main$" })
            Assert.True(Code(await RunAsync(kong, regex, "Bearer " + rig.Minter.Mint(b => b.Set("ref", v)))) == "403 no_rule_matched", v);

        var deny = kong.AddPlugin(rig.ConfigJson(c => c["rules"] = JsonNode.Parse(
            """[{"name":"all","claims":{"project_id":["*"]}},{"name":"no-feature","effect":"deny","claims":{"ref":["feature/*"]}}]""")));
        Assert.Equal("403 policy_denied", Code(await RunAsync(kong, deny, "Bearer " + rig.Minter.Mint(b => b.Set("ref", "feature/x")))));
        Assert.Equal("allowed", Code(await RunAsync(kong, deny, "Bearer " + rig.Minter.Mint(b => b.Set("ref", "feature*")))));

        // a token cannot supply the request's virtual claims
        var method = kong.AddPlugin(rig.ConfigJson(c => c["rules"] = JsonNode.Parse("""[{"name":"reads","claims":{"@method":["GET"],"project_id":["*"]}}]""")));
        var spoof = rig.Minter.Mint(b => b.Set("@method", "GET").Set("@path", "/"));
        Assert.Equal("403 no_rule_matched", Code(await RunAsync(kong, method, "Bearer " + spoof, method: "POST")));
        Assert.Equal("allowed", Code(await RunAsync(kong, method, "Bearer " + spoof, method: "GET")));
    }

    /// <summary>Unsigned tokens whose string members are not valid text: the attacker needs no key for these.</summary>
    private static IEnumerable<(string Name, string Token)> BadTextTokens(BinaryRig rig)
    {
        static string B64(byte[] b) => System.Buffers.Text.Base64Url.EncodeToString(b);
        var kid = rig.GitLab.CiKey.Kid;
        var header = Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}");
        var payload = Encoding.UTF8.GetBytes(rig.Minter.Ci().PayloadJson);
        string Make(byte[] h, byte[] p) => $"{B64(h)}.{B64(p)}.{B64(new byte[256])}";
        byte[] Replace(byte[] json, string member, byte[] rawValue)
        {
            var text = Encoding.UTF8.GetString(json);
            int at = text.IndexOf($"\"{member}\":", StringComparison.Ordinal) + member.Length + 3;
            int end = text.IndexOf('"', at + 1) + 1;
            return [.. json[..Encoding.UTF8.GetByteCount(text[..at])], .. rawValue, .. json[Encoding.UTF8.GetByteCount(text[..end])..]];
        }
        yield return ("invalid UTF-8 in kid", Make(Replace(header, "kid", [(byte)'"', 0xff, 0xfe, (byte)'"']), payload));
        yield return ("invalid UTF-8 in alg", Make(Replace(header, "alg", [(byte)'"', 0xc3, (byte)'"']), payload));
        yield return ("lone surrogate escape in alg", Make(Replace(header, "alg", "\"\\ud800\""u8.ToArray()), payload));
        yield return ("invalid UTF-8 in iss", Make(header, Replace(payload, "iss", [(byte)'"', 0xed, 0xa0, 0x80, (byte)'"'])));
        yield return ("invalid UTF-8 in jti", Make(header, Replace(payload, "jti", [(byte)'"', 0x80, (byte)'"'])));
        yield return ("lone surrogate escape in aud", Make(header, Replace(payload, "aud", "\"\\udfff\""u8.ToArray())));
        yield return ("invalid UTF-8 in sub", Make(header, Replace(payload, "sub", [(byte)'"', 0xf8, 0x88, 0x80, 0x80, 0x80, (byte)'"'])));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Invalid_utf8_or_lone_surrogates_in_a_token_are_never_allowed(KongProtocol protocol)
    {
        var (rig, kong, entity) = Route(protocol);
        foreach (var (name, token) in BadTextTokens(rig))
        {
            var r = await RunAsync(kong, entity, "Bearer " + token);
            output.WriteLine($"{protocol} {name}: {Code(r)}");
            Assert.True(r.Status is 401 or 500 && r.Exit is not null, $"{name}: {r}"); // fail-closed either way
        }
    }

    [Fact]
    public async Task Invalid_utf8_or_lone_surrogates_in_a_token_are_token_malformed()
    {
        var (rig, kong, entity) = Route(KongProtocol.ProtoBuf);
        foreach (var (name, token) in BadTextTokens(rig))
        {
            var code = Code(await RunAsync(kong, entity, "Bearer " + token));
            // members read before the signature check: token_malformed; sub is only read after it: signature_invalid
            Assert.True(code is "401 token_malformed" or "401 signature_invalid", $"{name}: {code}");
        }
    }
}
