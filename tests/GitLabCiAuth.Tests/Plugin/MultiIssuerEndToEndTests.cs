using System.Text.Json.Nodes;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>
/// Several GitLab issuers on one route: each with its own key source and audiences, selected by the token's exact
/// <c>iss</c> before any key is fetched, and the issuer in every identity the plugin emits.
/// </summary>
public sealed class MultiIssuerEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    private const string AudienceB = "https://api.other.example";
    private const string Template = "gitlab-{iss}-project-{project_id}";

    /// <summary>The harness's GitLab (A, the route's audience) plus a second one (B, with its own audience).</summary>
    private sealed class TwoIssuers : IAsyncDisposable
    {
        public PluginHarness H { get; }
        public FakeGitLab B { get; } = FakeGitLab.Start();
        public TokenMinter MinterB { get; }

        public TwoIssuers(KongProtocol protocol)
        {
            H = PluginHarness.Start(protocol, ownGitLab: true);
            MinterB = new TokenMinter(B, AudienceB, H.Time);
        }

        public PluginEntity Add(Action<JsonObject>? edit = null) => H.Add(c =>
        {
            c["issuers"] = new JsonArray(new JsonObject { ["issuer"] = B.Issuer, ["audiences"] = new JsonArray(AudienceB) });
            c["credential_template"] = Template;
            edit?.Invoke(c);
        });

        public async ValueTask DisposeAsync()
        {
            await H.DisposeAsync();
            await B.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Tokens_of_each_listed_issuer_are_allowed_with_their_own_audiences(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        var entity = t.Add();

        var a = await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        var b = await t.H.AllowedAsync(entity, t.MinterB.Mint());

        Assert.Equal(t.H.GitLab.Issuer, a.UpstreamHeaders["X-GitLab-Issuer"]);
        Assert.Equal(t.B.Issuer, b.UpstreamHeaders["X-GitLab-Issuer"]);
        Assert.Equal($"gitlab-{t.H.GitLab.Issuer}-project-16234", a.Credential?.Id);
        Assert.Equal($"gitlab-{t.B.Issuer}-project-16234", b.Credential?.Id);
        Assert.NotEqual(a.Credential?.Id, b.Credential?.Id);
        Assert.Equal(t.B.Issuer, Expect.Str(Expect.Record(b), "issuer"));

        // B's record has its own audiences: the route's do not apply to B's tokens, nor B's to A's
        Expect.InvalidToken(await t.H.RunAsync(entity, new TokenMinter(t.B, PluginHarness.Audience, t.H.Time).Mint()), "audience_mismatch");
        Expect.InvalidToken(await t.H.RunAsync(entity, new TokenMinter(t.H.GitLab, AudienceB, t.H.Time).Mint()), "audience_mismatch");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task An_unlisted_issuer_is_issuer_mismatch_with_no_key_fetch(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        await using var c = FakeGitLab.Start();
        var entity = t.Add();
        await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        await t.H.AllowedAsync(entity, t.MinterB.Mint());
        int keysA = t.H.GitLab.KeysRequests, keysB = t.B.KeysRequests;

        var r = await t.H.RunAsync(entity, new TokenMinter(c, PluginHarness.Audience, t.H.Time).Mint());

        Expect.InvalidToken(r, "issuer_mismatch");
        Assert.Equal(0, c.DiscoveryRequests + c.KeysRequests);
        Assert.Equal(keysA, t.H.GitLab.KeysRequests);
        Assert.Equal(keysB, t.B.KeysRequests);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task The_same_kid_at_two_issuers_verifies_only_against_its_own_issuer(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        // B also publishes a different key under A's kid
        using var impostor = MinterKey.CreateRsa(kid: t.H.GitLab.CiKey.Kid);
        t.B.AddJwksEntry(impostor.PublicJwkJson());
        var entity = t.Add();

        var signedByImpostorAsB = new TokenMinter(t.B.Issuer, impostor, AudienceB, t.H.Time).Mint();
        var signedByAasB = new TokenMinter(t.B.Issuer, t.H.GitLab.CiKey, AudienceB, t.H.Time).Mint();
        var signedByImpostorAsA = new TokenMinter(t.H.GitLab.Issuer, impostor, PluginHarness.Audience, t.H.Time).Mint();

        await t.H.AllowedAsync(entity, signedByImpostorAsB);                                      // B's key, B's token
        Expect.InvalidToken(await t.H.RunAsync(entity, signedByAasB), "signature_invalid");      // A's key never verifies B's token
        Expect.InvalidToken(await t.H.RunAsync(entity, signedByImpostorAsA), "signature_invalid"); // B's key never verifies A's token
        await t.H.AllowedAsync(entity, t.H.Minter.Mint());
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_rotation_at_one_issuer_refetches_only_its_keys(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        var entity = t.Add();
        await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        await t.H.AllowedAsync(entity, t.MinterB.Mint());
        int keysA = t.H.GitLab.KeysRequests, keysB = t.B.KeysRequests;

        t.B.Rotate();
        await t.H.AllowedAsync(entity, t.MinterB.Mint());   // unknown kid: one refetch at B

        Assert.Equal(keysB + 1, t.B.KeysRequests);
        Assert.Equal(keysA, t.H.GitLab.KeysRequests);
        await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        Assert.Equal(keysA, t.H.GitLab.KeysRequests);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task One_issuers_outage_leaves_the_others_tokens_working(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        t.B.SetFault(FakeGitLabFault.Down);
        var entity = t.Add();

        Expect.Unavailable(await t.H.RunAsync(entity, t.MinterB.Mint()), out _);
        var a = await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        Assert.Equal(t.H.GitLab.Issuer, a.UpstreamHeaders["X-GitLab-Issuer"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task X_GitLab_Issuer_cannot_be_spoofed(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        var entity = t.Add();

        var r = await t.H.AllowedAsync(entity, t.MinterB.Mint(), req =>
        {
            req.Headers.Add("X-GitLab-Issuer", "https://gitlab.com");
            req.Headers.Add("X_GitLab_Issuer", "https://gitlab.com");
        });

        var values = r.UpstreamHeaders.Where(kv => kv.Key.Replace('_', '-').Equals("X-GitLab-Issuer", StringComparison.OrdinalIgnoreCase))
            .Select(kv => kv.Value).ToList();
        Assert.Equal([t.B.Issuer], values);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Rules_can_pin_a_claim_to_one_issuer(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        var entity = t.Add(c => c["rules"] = PluginHarness.Rules(
            $$$"""[{"name":"acme-on-a","claims":{"iss":["{{{t.H.GitLab.Issuer}}}"],"project_path":["acme/**"]}}]"""));

        await t.H.AllowedAsync(entity, t.H.Minter.Mint());
        var fromB = await t.H.RunAsync(entity, t.MinterB.Mint()); // the same project path, from the other GitLab
        Expect.Forbidden(fromB, "no_rule_matched");
        Assert.Contains($"iss=\"{t.B.Issuer}\"", Expect.Str(Expect.Record(fromB), "trace"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Several_issuers_need_a_credential_template_that_names_the_issuer(KongProtocol protocol)
    {
        await using var t = new TwoIssuers(protocol);
        var shared = t.Add(c => c["credential_template"] = "gitlab-project-{project_id}");

        var r = await t.H.RunAsync(shared, t.H.Minter.Mint());

        Assert.True(r.Status == 500 && r.Outcome == SimOutcome.Failed, r.ToString());
        var refusal = t.H.ServerLogText.Split('\n').First(l => l.Contains("instance refused", StringComparison.Ordinal));
        Assert.Contains("credential_template", refusal);
        Assert.Contains("{iss_host}", refusal);

        // {iss_host} qualifies unless two issuers share a host, as these two (127.0.0.1) do
        var sameHost = t.Add(c => c["credential_template"] = "gitlab-{iss_host}-project-{project_id}");
        Assert.Equal(500, (await t.H.RunAsync(sameHost, t.H.Minter.Mint())).Status);
        Assert.Contains(t.H.ServerLogText.Split('\n'), l => l.Contains("instance refused", StringComparison.Ordinal)
            && l.Contains("{iss_host} is '127.0.0.1'", StringComparison.Ordinal));
        // no credential at all is fine
        await t.H.AllowedAsync(t.Add(c => c["credential_template"] = ""), t.MinterB.Mint());
    }
}
