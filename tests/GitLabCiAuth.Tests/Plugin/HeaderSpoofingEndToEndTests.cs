using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>
/// No header a client sends survives as identity: identity headers and Kong's consumer headers, under any spelling an
/// upstream reads as the same name, on every outcome that lets the request through.
/// </summary>
public sealed class HeaderSpoofingEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    private static readonly string[] IdentityNames =
    [
        "X-GitLab-Project-Id", "X-GitLab-Project-Path", "X-GitLab-Namespace-Path", "X-GitLab-Pipeline-Id", "X-GitLab-Job-Id",
        "X-GitLab-Ref", "X-GitLab-Ref-Protected", "X-GitLab-Sha", "X-GitLab-Environment", "X-GitLab-User-Login", "X-GitLab-Runner-Id",
    ];

    private static readonly string[] ConsumerNames =
        ["X-Consumer-ID", "X-Consumer-Custom-ID", "X-Consumer-Username", "X-Credential-Identifier", "X-Anonymous-Consumer"];

    private static string CgiName(string name) => name.ToUpperInvariant().Replace('-', '_');

    /// <summary>Every upstream header that a CGI upstream reads as <paramref name="name"/>, with its values.</summary>
    private static List<string> ValuesAsCgiReads(SimResult r, string name) =>
        r.UpstreamHeaders.Where(kv => CgiName(kv.Key) == CgiName(name)).Select(kv => kv.Value).ToList();

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Underscore_and_mixed_spellings_of_identity_headers_are_removed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();

        var r = await h.AllowedAsync(entity, h.Minter.Mint(), req =>
        {
            req.Headers.Add("X_GitLab_Project_Id", "3");
            req.Headers.Add("X-GitLab_Project-Id", "4");
            req.Headers.Add("x_gitlab_ref", "main");
            req.Headers.Add("X_Consumer_Username", "admin");
            req.Headers.Add("X-Unrelated_Header", "kept");
        });

        Assert.Equal(["16234"], ValuesAsCgiReads(r, "X-GitLab-Project-Id"));
        Assert.Equal(["main"], ValuesAsCgiReads(r, "X-GitLab-Ref"));
        Assert.Empty(ValuesAsCgiReads(r, "X-Consumer-Username"));
        Assert.Equal("kept", r.UpstreamHeaders["X-Unrelated_Header"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task An_earlier_auth_plugins_credential_keeps_its_consumer_headers_but_no_spoofed_identity(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "anonymous-ci" });
        var entity = h.Add(c => c["anonymous"] = "anonymous-ci");
        var token = h.Minter.Mint();

        var r = await h.RunAsync(entity, token, req =>
        {
            req.AuthenticatedCredential = new SimCredential { Id = "key-auth-cred-1" };
            req.Headers.Add("X-Consumer-ID", "key-auth-consumer");   // as key-auth set it before this plugin ran
            req.Headers.Add("X_Consumer_ID", "spoofed");             // a spelling no Kong plugin writes
            req.Headers.Add("X-GitLab-Project-Id", "16234");
            req.Headers.Add("X-GitLab-Ref", "main");
            req.Headers.Add("X-GitLab-Ref-Protected", "true");
        });

        Assert.Equal(200, r.Status);
        Assert.Equal("key-auth-cred-1", r.Credential?.Id);
        Assert.DoesNotContain("kong.client.authenticate", r.PdkCalls);
        foreach (var name in IdentityNames) Assert.Empty(ValuesAsCgiReads(r, name));
        Assert.Equal(["key-auth-consumer"], ValuesAsCgiReads(r, "X-Consumer-ID"));
        Assert.Null(r.UpstreamHeaders["authorization"]); // hide_credentials applies here too
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Allowed_requests_carry_Kongs_consumer_headers_from_the_credential_and_the_mapped_consumer(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var consumerId = Guid.NewGuid().ToString();
        h.Kong.Consumers.Add(new SimConsumer { Id = consumerId, Username = "billing-api", CustomId = "cmdb-42" });
        var mapped = h.Add(c => c["consumer_claim"] = "project_path");
        var unmapped = h.Add();

        void Spoof(SimRequest req)
        {
            foreach (var name in ConsumerNames) req.Headers.Add(name, "spoofed");
        }

        var withConsumer = await h.AllowedAsync(mapped, h.Minter.Mint(b => b.Set("project_path", "billing-api")), Spoof);
        Assert.Equal(consumerId, withConsumer.UpstreamHeaders["X-Consumer-ID"]);
        Assert.Equal("billing-api", withConsumer.UpstreamHeaders["X-Consumer-Username"]);
        Assert.Equal("cmdb-42", withConsumer.UpstreamHeaders["X-Consumer-Custom-ID"]);
        Assert.Equal("gitlab-project-16234", withConsumer.UpstreamHeaders["X-Credential-Identifier"]);
        Assert.False(withConsumer.UpstreamHeaders.Contains("X-Anonymous-Consumer"));

        var without = await h.AllowedAsync(unmapped, h.Minter.Mint(), Spoof);
        Assert.Equal("gitlab-project-16234", without.UpstreamHeaders["X-Credential-Identifier"]);
        foreach (var name in new[] { "X-Consumer-ID", "X-Consumer-Username", "X-Consumer-Custom-ID", "X-Anonymous-Consumer" })
            Assert.False(without.UpstreamHeaders.Contains(name), name);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task The_anonymous_consumer_gets_its_headers_and_X_Anonymous_Consumer(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var anonId = Guid.NewGuid().ToString();
        h.Kong.Consumers.Add(new SimConsumer { Id = anonId, Username = "anonymous-ci" });
        var entity = h.Add(c => c["anonymous"] = "anonymous-ci");

        var r = await h.AllowedAsync(entity, token: null, req =>
        {
            req.Headers.Add("X-Credential-Identifier", "gitlab-project-16234");
            req.Headers.Add("X-Consumer-Custom-ID", "spoofed");
        });

        Assert.Equal(anonId, r.UpstreamHeaders["X-Consumer-ID"]);
        Assert.Equal("anonymous-ci", r.UpstreamHeaders["X-Consumer-Username"]);
        Assert.Equal("true", r.UpstreamHeaders["X-Anonymous-Consumer"]);
        Assert.False(r.UpstreamHeaders.Contains("X-Credential-Identifier"));
        Assert.False(r.UpstreamHeaders.Contains("X-Consumer-Custom-ID")); // the anonymous Consumer has none
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Dry_run_requests_that_would_be_denied_get_no_consumer_headers(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c =>
        {
            c["mode"] = "dry_run";
            c["rules"] = PluginHarness.Rules("""[{"name":"main-only","claims":{"ref":["main"]}}]""");
        });
        void Spoof(SimRequest req)
        {
            foreach (var name in ConsumerNames) req.Headers.Add(name, "spoofed");
        }

        var wouldDeny = await h.AllowedAsync(entity, h.Minter.Mint(b => b.Set("ref", "feature")), Spoof);
        foreach (var name in ConsumerNames) Assert.False(wouldDeny.UpstreamHeaders.Contains(name), name);
        Assert.Equal("feature", wouldDeny.UpstreamHeaders["X-GitLab-Ref"]); // the identity is the token's

        var wouldReject = await h.AllowedAsync(entity, h.Minter.Ci(h.Now.AddHours(-3)).Build(), Spoof);
        foreach (var name in ConsumerNames.Concat(IdentityNames)) Assert.False(wouldReject.UpstreamHeaders.Contains(name), name);

        var wouldAllow = await h.AllowedAsync(entity, h.Minter.Mint(), Spoof);
        Assert.Equal("gitlab-project-16234", wouldAllow.UpstreamHeaders["X-Credential-Identifier"]);
    }

    [Fact]
    public async Task An_allowed_request_clears_only_the_spellings_it_was_sent_in_the_same_two_round_trips()
    {
        await using var h = PluginHarness.Start(KongProtocol.ProtoBuf);
        var entity = h.Add();
        var token = h.Minter.Mint();
        await h.AllowedAsync(entity, token); // instance started, keys fetched, token cached

        long writes = h.Host.Server.EventWrites;
        var clean = await h.AllowedAsync(entity, token);
        Assert.Equal(2, h.Host.Server.EventWrites - writes);
        Assert.Equal(1, clean.PdkCalls.Count(c => c == "kong.service.request.clear_header")); // the token only

        writes = h.Host.Server.EventWrites;
        var spoofed = await h.AllowedAsync(entity, token, req =>
        {
            req.Headers.Add("X-GitLab-Project-Id", "1");      // replaced by set_headers: no clear
            req.Headers.Add("x_gitlab_project_id", "2");      // one clear
            req.Headers.Add("X_GITLAB_PROJECT_ID", "3");      // the same name to nginx: no second clear
            req.Headers.Add("X-Consumer-ID", "4");            // one clear (no Consumer mapped)
        });
        Assert.Equal(2, h.Host.Server.EventWrites - writes);
        Assert.Equal(3, spoofed.PdkCalls.Count(c => c == "kong.service.request.clear_header"));
        Assert.Equal(["16234"], ValuesAsCgiReads(spoofed, "X-GitLab-Project-Id"));
        Assert.Empty(ValuesAsCgiReads(spoofed, "X-Consumer-ID"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Claim_values_reach_Kongs_log_line_and_the_record_escaped(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""[{"name":"main-only","claims":{"ref":["main"]}}]"""));
        string forged = "feature\n2026/12/04 10:00:00 [notice] allowed project_id=1 \u202Egnp.exe";

        var r = await h.RunAsync(entity, h.Minter.Mint(b => b.Set("ref", forged)));

        Expect.Forbidden(r, "no_rule_matched");
        var line = Assert.Single(r.Logs, l => l.Message.Contains("denied", StringComparison.Ordinal)).Message;
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\u202E', line);
        Assert.Contains("ref=feature\\u000a2026/12/04", line);
        var record = Expect.Record(r);
        Assert.Equal("feature\\u000a2026/12/04 10:00:00 [notice] allowed project_id=1 \\u202egnp.exe", Expect.Str(record, "ref"));
        Assert.DoesNotContain('\n', Expect.Str(record, "trace")!);
    }

    public static TheoryData<KongProtocol, int> Seeds()
    {
        var data = new TheoryData<KongProtocol, int>();
        foreach (var p in new[] { KongProtocol.ProtoBuf, KongProtocol.MsgPack })
            for (int seed = 1; seed <= 4; seed++) data.Add(p, seed);
        return data;
    }

    /// <summary>
    /// Property: for random subsets of protected names in random '-'/'_'/case spellings, on every outcome, no value the
    /// client sent reaches the upstream under a name a CGI upstream reads as a protected one.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task No_client_value_survives_under_a_protected_name_on_any_outcome(KongProtocol protocol, int seed)
    {
        var rng = new Random(seed);
        await using var h = PluginHarness.Start(protocol);
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "anonymous-ci" });
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "billing-api", CustomId = "c1" });
        var mainOnly = PluginHarness.Rules("""[{"name":"main-only","claims":{"ref":["main"]}}]""");
        var enforce = h.Add(c => { c["rules"] = mainOnly.DeepClone(); c["consumer_claim"] = "project_path"; });
        var dryRun = h.Add(c => { c["rules"] = mainOnly.DeepClone(); c["mode"] = "dry_run"; });
        var anonymous = h.Add(c => { c["rules"] = mainOnly.DeepClone(); c["anonymous"] = "anonymous-ci"; });

        string good = h.Minter.Mint(b => b.Set("project_path", "billing-api"));
        string feature = h.Minter.Mint(b => b.Set("ref", "feature").Remove("environment"));
        string expired = h.Minter.Ci(h.Now.AddHours(-3)).Build();
        var outcomes = new (string Name, PluginEntity Entity, string? Token, bool EarlierCredential)[]
        {
            ("allowed", enforce, good, false),
            ("denied", enforce, feature, false),
            ("rejected", enforce, expired, false),
            ("dry_run allow", dryRun, good, false),
            ("dry_run deny", dryRun, feature, false),
            ("dry_run reject", dryRun, expired, false),
            ("anonymous (no token)", anonymous, null, false),
            ("anonymous (bad token)", anonymous, expired, false),
            ("anonymous, allowed", anonymous, good, false),
            ("earlier credential", anonymous, good, true),
        };
        var all = IdentityNames.Concat(ConsumerNames).ToArray();

        for (int round = 0; round < 12; round++)
        {
            var sent = all.Where(_ => rng.Next(3) == 0).Select(n => (Name: Spell(n, rng), Value: $"spoofed-{rng.Next(100000)}")).ToList();
            foreach (var (label, entity, token, earlier) in outcomes)
            {
                var r = await h.RunAsync(entity, token, req =>
                {
                    foreach (var (name, value) in sent) req.Headers.Add(name, value);
                    if (!earlier) return;
                    // what key-auth did before this plugin ran: authenticated, and set or cleared each consumer header
                    // under its own name (nginx's set_header replaces every value of the name, case-insensitively)
                    req.AuthenticatedCredential = new SimCredential { Id = "key-auth-cred" };
                    foreach (var name in ConsumerNames) req.Headers[name] = null;
                    req.Headers["X-Consumer-ID"] = "key-auth-consumer";
                    req.Headers["X-Credential-Identifier"] = "key-auth-cred";
                });
                if (r.Outcome == SimOutcome.Exited) continue; // nothing reached the upstream
                Assert.Equal(SimOutcome.Completed, r.Outcome);
                foreach (var (name, value) in r.UpstreamHeaders)
                {
                    bool isProtected = all.Any(p => CgiName(p) == CgiName(name));
                    Assert.False(isProtected && value.StartsWith("spoofed-", StringComparison.Ordinal),
                        $"{label}: the client's {name}: {value} reached the upstream (sent: {string.Join(", ", sent.Select(s => s.Name))})");
                }
            }
        }
    }

    private static string Spell(string name, Random rng)
    {
        var chars = name.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (chars[i] == '-' && rng.Next(2) == 0) chars[i] = '_';
            else if (char.IsLetter(chars[i])) chars[i] = rng.Next(2) == 0 ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
        }
        return new string(chars);
    }
}
