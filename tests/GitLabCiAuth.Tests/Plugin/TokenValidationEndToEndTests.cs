using System.Text;
using System.Text.Json.Nodes;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>Issue 3 through the Kong simulator: which tokens pass, and how the others are refused.</summary>
public sealed class TokenValidationEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Valid_token_is_allowed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var token = h.Minter.Mint();

        var r = await h.AllowedAsync(entity, token);

        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
        Expect.NoTokenLeak(r, token);
        // the same token again (verified-token cache) is still allowed
        Expect.Allowed(await h.RunAsync(entity, token));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Aud_as_an_array_containing_ours_is_allowed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var token = h.Minter.Mint(b => b.Set("aud", new[] { "https://vault.acme.example", PluginHarness.Audience }));

        await h.AllowedAsync(entity, token);
    }

    [Fact]
    public async Task Any_of_several_configured_audiences_is_accepted()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["audiences"] = new JsonArray("https://other.acme.example", PluginHarness.Audience));

        await h.AllowedAsync(entity, h.Minter.Mint());
    }

    /// <summary>Hostile or broken tokens: the header value sent, an optional config change, the expected code.</summary>
    private static (string Header, Action<JsonObject>? Config, string Code) Case(PluginHarness h, string name)
    {
        var now = h.Now;
        var m = h.Minter;
        string Bearer(string t) => "Bearer " + t;
        return name switch
        {
            "expired" => (Bearer(m.Ci(now.AddHours(-2)).Build()), null, "token_expired"),
            "nbf-in-the-future" => (Bearer(m.Mint(b => b.Set("nbf", now.AddMinutes(10).ToUnixTimeSeconds()))), null, "token_not_yet_valid"),
            "too-old" => (Bearer(m.Ci().IssuedAt(now.AddHours(-1), TimeSpan.FromHours(3)).Build()),
                c => c["max_token_age_seconds"] = 600, "token_too_old"),
            "wrong-iss" => (Bearer(m.Mint(b => b.Set("iss", "https://gitlab.evil.example"))), null, "issuer_mismatch"),
            "iss-with-trailing-slash" => (Bearer(m.Mint(b => b.Set("iss", h.GitLab.Issuer + "/"))), null, "issuer_mismatch"),
            "wrong-aud" => (Bearer(m.Mint(b => b.Set("aud", "https://other-api.acme.example"))), null, "audience_mismatch"),
            "aud-array-without-ours" => (Bearer(m.Mint(b => b.Set("aud", new[] { "https://a.example", "https://b.example" }))), null, "audience_mismatch"),
            "no-aud" => (Bearer(m.Mint(b => b.Remove("aud"))), null, "audience_mismatch"),
            "user-login-token" => (Bearer(m.UserLoginToken()), null, "claim_missing"),
            "ci-claim-missing" => (Bearer(m.Mint(b => b.Remove("runner_id"))), null, "claim_missing"),
            "ci-claim-empty" => (Bearer(m.Mint(b => b.Set("project_id", ""))), null, "claim_missing"),
            "alg-none" => (Bearer(m.AlgNone()), null, "algorithm_not_allowed"),
            "hs256-with-public-key" => (Bearer(m.Hs256WithPublicKey()), null, "algorithm_not_allowed"),
            "unknown-key-reusing-kid" => (Bearer(m.SignedByUnknownKeyReusingKid()), null, "signature_invalid"),
            "tampered-payload" => (Bearer(Tamper(m.Mint())), null, "signature_invalid"),
            "random-kid" => (Bearer(m.WithRandomKid()), null, "unknown_key"),
            "no-kid" => (Bearer(m.Ci().RemoveHeader("kid").Build()), null, "unknown_key"),
            "oversized-token" => (Bearer(m.Mint(b => b.Set("padding", new string('x', 9000)))), null, "token_too_large"),
            "oversized-garbage" => ("Bearer " + new string('A', 9_000), null, "token_too_large"), // over max_token_bytes; a longer header line needs raised nginx buffers
            "smaller-max-token-bytes" => (Bearer(m.Mint()), c => c["max_token_bytes"] = 256, "token_too_large"),
            "broken-base64" => ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3Mi$.c2lnbmF0dXJl", null, "token_malformed"),
            "impossible-base64-length" => ("Bearer eyJhbGciOiJSUzI1NiJ9.e.c2lnbmF0dXJl", null, "token_malformed"),
            "broken-payload-json" => (Bearer(m.Ci().BuildWithRawPayload(Encoding.UTF8.GetBytes("{\"iss\":\"x\","))), null, "token_malformed"),
            "payload-not-an-object" => (Bearer(m.Ci().BuildWithRawPayload(Encoding.UTF8.GetBytes("[1,2,3]"))), null, "token_malformed"),
            "broken-header-json" => (Bearer(m.Ci().BuildWithRawHeader(Encoding.UTF8.GetBytes("{\"alg\":"))), null, "token_malformed"),
            "two-segments" => ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0", null, "token_malformed"),
            "four-segments" => (Bearer(m.Mint() + ".eyJ4IjoxfQ"), null, "token_malformed"),
            "basic-scheme" => ("Basic Z2l0bGFiLWNpLXRva2VuOnNlY3JldA==", null, "token_malformed"),
            "bearer-without-token" => ("Bearer", null, "token_malformed"),
            "token-without-scheme" => (m.Mint(), null, "token_malformed"),
            "two-tokens" => ("Bearer " + m.Mint() + " " + m.Mint(), null, "token_malformed"),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name),
        };
    }

    private static readonly string[] CaseNames =
    [
        "expired", "nbf-in-the-future", "too-old", "wrong-iss", "iss-with-trailing-slash", "wrong-aud", "aud-array-without-ours",
        "no-aud", "user-login-token", "ci-claim-missing", "ci-claim-empty", "alg-none", "hs256-with-public-key",
        "unknown-key-reusing-kid", "tampered-payload", "random-kid", "no-kid", "oversized-token", "oversized-garbage",
        "smaller-max-token-bytes", "broken-base64", "impossible-base64-length", "broken-payload-json", "payload-not-an-object",
        "broken-header-json", "two-segments", "four-segments", "basic-scheme", "bearer-without-token", "token-without-scheme",
        "two-tokens",
    ];

    public static TheoryData<string, KongProtocol> BadTokens()
    {
        var data = new TheoryData<string, KongProtocol>();
        foreach (var name in CaseNames)
            foreach (var p in new[] { KongProtocol.ProtoBuf, KongProtocol.MsgPack })
                data.Add(name, p);
        return data;
    }

    [Theory]
    [MemberData(nameof(BadTokens))]
    public async Task Bad_token_is_refused_with_401_and_its_code(string name, KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var (header, config, code) = Case(h, name);
        var entity = h.Add(config);

        var r = await h.RunAsync(entity, token: null, edit: req => req.Headers["authorization"] = header);

        Expect.InvalidToken(r, code);
        var record = Expect.Record(r);
        Assert.Equal("deny", Expect.Str(record, "decision"));
        Assert.Equal(code, Expect.Str(record, "code"));
        Assert.Equal("enforce", Expect.Str(record, "mode"));
        var line = Expect.Notice(r, "(" + code + ")");
        if (header.Length >= 16) Assert.DoesNotContain(header, line, StringComparison.Ordinal);
        foreach (var part in header.Split(' ', '.').Where(p => p.Length >= 40))
            Assert.DoesNotContain(part, Expect.Flatten(r.SerializeValues) + line + r.Exit!.Headers + r.Exit.BodyText, StringComparison.Ordinal);
        // nothing is proxied: the upstream never sees identity headers
        Assert.DoesNotContain(r.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Log_line_and_record_carry_kid_jti_and_short_hash_never_the_token(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var jti = Guid.NewGuid().ToString();
        var token = h.Minter.Ci().SignWith(TokenMinter.OutsiderKey).Header("kid", h.GitLab.CiKey.Kid).Set("jti", jti).Build();

        var r = await h.RunAsync(entity, token);

        Expect.InvalidToken(r, "signature_invalid");
        var line = Expect.Notice(r, "(signature_invalid)");
        Assert.Contains("kid=" + h.GitLab.CiKey.Kid, line);
        Assert.Contains("jti=" + jti, line);
        Assert.Contains("token=" + Expect.ShortHash(token), line);
        Assert.Contains("iss=" + h.GitLab.Issuer, line);
        Assert.Contains("aud=" + PluginHarness.Audience, line);
        var record = Expect.Record(r);
        Assert.Equal(jti, Expect.Str(record, "jti"));
        Assert.Equal(Expect.ShortHash(token), Expect.Str(record, "token_hash"));
        Expect.NoTokenLeak(r, token);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Expired_token_log_line_names_the_reason_and_the_token_hash(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var token = h.Minter.Ci(h.Now.AddHours(-3)).Build();

        var r = await h.RunAsync(entity, token);

        Expect.InvalidToken(r, "token_expired");
        Assert.Contains("expired", r.Exit!.Headers["WWW-Authenticate"]);
        var line = Expect.Notice(r, "(token_expired)");
        Assert.Contains("token=" + Expect.ShortHash(token), line);
        Assert.Contains("kid=" + h.GitLab.CiKey.Kid, line);
        Expect.NoTokenLeak(r, token);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Missing_header_is_401_token_missing_with_a_bare_challenge(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();

        var r = await h.RunAsync(entity);

        Expect.MissingToken(r);
        Assert.Equal("token_missing", Expect.Str(Expect.Record(r), "code"));
    }

    [Fact]
    public async Task Empty_authorization_header_counts_as_missing()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add();

        Expect.MissingToken(await h.RunAsync(entity, edit: r => r.Headers["authorization"] = "   "));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Two_authorization_headers_never_reach_the_plugin(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var good = h.Minter.Mint();

        var r = await h.RunAsync(entity, edit: req =>
        {
            req.Headers.Add("Authorization", "Bearer " + good);
            req.Headers.Add("authorization", "Bearer " + good);
        });

        // nginx answers 400 to a second Authorization line before Kong runs any plugin
        Assert.Equal(SimOutcome.RejectedByNginx, r.Outcome);
        Assert.Equal(400, r.Status);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Two_custom_token_headers_are_401_token_malformed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["token_header"] = "x-ci-token");
        var good = h.Minter.Mint();

        var r = await h.RunAsync(entity, edit: req =>
        {
            req.Headers.Add("X-CI-Token", "Bearer " + good);
            req.Headers.Add("x-ci-token", "Bearer " + good);
        });

        Expect.InvalidToken(r, "token_malformed");
        Expect.NoTokenLeak(r, good);
    }

    [Fact]
    public async Task Custom_token_header_carries_the_token()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["token_header"] = "X-GitLab-CI-Token");
        var token = h.Minter.Mint();

        // a bare token and a Bearer token in the custom header both work; Authorization is not looked at
        var r = await h.AllowedAsync(entity, token: null, edit: req =>
        {
            req.Headers["x-gitlab-ci-token"] = token;
            req.Headers["authorization"] = "Basic dXNlcjpwYXNz";
        });
        Assert.Null(r.UpstreamHeaders["x-gitlab-ci-token"]);
        Assert.Equal("Basic dXNlcjpwYXNz", r.UpstreamHeaders["authorization"]);
        await h.AllowedAsync(entity, token: null, edit: req => req.Headers["x-gitlab-ci-token"] = "Bearer " + token);

        Expect.MissingToken(await h.RunAsync(entity, "ignored-authorization"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Static_jwks_needs_no_fetch(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        using var key = MinterKey.CreateRsa();
        const string issuer = "https://gitlab.airgapped.example";
        var minter = new TokenMinter(issuer, key, PluginHarness.Audience, h.Time);
        var entity = h.Kong.AddPlugin(new JsonObject
        {
            ["issuer"] = issuer,
            ["audiences"] = new JsonArray(PluginHarness.Audience),
            ["static_jwks"] = MinterKey.JwksJson(key),
            ["rules"] = PluginHarness.Rules("""[{"name":"any","claims":{"project_id":["*"]}}]"""),
        }.ToJsonString());

        await h.AllowedAsync(entity, minter.Mint());
        Expect.InvalidToken(await h.RunAsync(entity, minter.Ci().SignWith(TokenMinter.OutsiderKey).Header("kid", key.Kid).Build()), "signature_invalid");
        Expect.InvalidToken(await h.RunAsync(entity, h.Minter.Mint()), "issuer_mismatch");
    }

    private static string Tamper(string token)
    {
        var parts = token.Split('.');
        var payload = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]))
            .Replace("\"16234\"", "\"99999\"", StringComparison.Ordinal);
        return parts[0] + "." + System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payload)) + "." + parts[2];
    }
}
