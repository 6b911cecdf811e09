using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>Issue 4, policy: deny wins, no match, exposing the rule, dry run, request claims.</summary>
public sealed class PolicyEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    private const string AllowAnyDenyUnprotected = """
        [{"name":"any-project","claims":{"project_id":["*"]}},
         {"name":"no-unprotected-refs","effect":"deny","claims":{"ref_protected":["false"]}}]
        """;

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Deny_rule_wins_with_403_policy_denied(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules(AllowAnyDenyUnprotected));
        var token = h.Minter.Mint(b => b.Set("ref", "feature/x").Set("ref_protected", "false"));

        var r = await h.RunAsync(entity, token);

        Expect.Forbidden(r, "policy_denied");
        Assert.False(r.Authenticated);
        Assert.DoesNotContain(r.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
        var record = Expect.Record(r);
        Assert.Equal("deny", Expect.Str(record, "decision"));
        Assert.Equal("policy_denied", Expect.Str(record, "code"));
        Assert.Equal("no-unprotected-refs", Expect.Str(record, "rule"));
        Assert.Equal("16234", Expect.Str(record, "project_id"));
        var line = Expect.Notice(r, "(policy_denied)");
        Assert.Contains("no-unprotected-refs", line);
        Assert.Contains("token=" + Expect.ShortHash(token), line);
        Expect.NoTokenLeak(r, token);

        // the protected ref passes the same policy, decided by the allow rule
        var ok = await h.AllowedAsync(entity, h.Minter.Mint());
        Assert.Equal("any-project", Expect.Str(Expect.Record(ok), "rule"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task No_matching_rule_is_403_no_rule_matched_with_the_trace_in_the_log(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""
            [{"name":"billing-deploys","claims":{"project_id":["4242"]}},
             {"name":"platform-main","claims":{"namespace_path":["acme/platform"],"ref":["release/*"]}}]
            """));

        var r = await h.RunAsync(entity, h.Minter.Mint());

        Expect.Forbidden(r, "no_rule_matched");
        var record = Expect.Record(r);
        Assert.Equal("no_rule_matched", Expect.Str(record, "code"));
        Assert.False(record.ContainsKey("rule"));
        // for each allow rule, the first claim that failed
        var line = Expect.Notice(r, "(no_rule_matched)");
        Assert.Contains("billing-deploys", line);
        Assert.Contains("project_id", line);
        Assert.Contains("platform-main", line);
        Assert.Contains("ref", line);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Expose_deny_reason_puts_the_deciding_rule_in_the_body(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c =>
        {
            c["rules"] = PluginHarness.Rules(AllowAnyDenyUnprotected);
            c["expose_deny_reason"] = true;
        });

        var r = await h.RunAsync(entity, h.Minter.Mint(b => b.Set("ref_protected", "false")));

        Expect.Forbidden(r, "policy_denied", rule: "no-unprotected-refs");
    }

    [Fact]
    public async Task Expose_deny_reason_names_no_rule_when_none_decided()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c =>
        {
            c["rules"] = PluginHarness.Rules("""[{"name":"other-project","claims":{"project_id":["1"]}}]""");
            c["expose_deny_reason"] = true;
        });

        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint()), "no_rule_matched");
    }

    [Fact]
    public async Task Deny_reason_is_not_exposed_by_default()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules(AllowAnyDenyUnprotected));

        var r = await h.RunAsync(entity, h.Minter.Mint(b => b.Set("ref_protected", "false")));

        Expect.Forbidden(r, "policy_denied");
        Assert.DoesNotContain("no-unprotected-refs", r.Exit!.BodyText);
    }

    [Fact]
    public async Task Realistic_policy_with_globs_regex_negation_and_typed_values()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""
            [{"name":"deploy-prod","claims":{
                "project_path":["acme/platform/*"],
                "ref":["main","re:release/v[0-9]+"],
                "ref_protected":["true"],
                "pipeline_source":["!merge_request_event"],
                "runner_id":["5120","5121"]}},
             {"name":"no-fork-mrs","effect":"deny","claims":{"job_project_path":["!acme/**"]}}]
            """));

        await h.AllowedAsync(entity, h.Minter.Mint());
        await h.AllowedAsync(entity, h.Minter.Mint(b => b.Set("ref", "release/v12")));
        await h.AllowedAsync(entity, h.Minter.Mint(b => b.Set("job_project_path", "acme/platform/billing-api")));
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("ref", "release/v12-hotfix"))), "no_rule_matched");
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("pipeline_source", "merge_request_event"))), "no_rule_matched");
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("runner_id", 77))), "no_rule_matched");
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("project_path", "acme/platform/sub/deep"))), "no_rule_matched");
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("job_project_path", "mallory/fork"))), "policy_denied");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Dry_run_forwards_a_policy_deny_and_records_the_would_be_decision(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c =>
        {
            c["rules"] = PluginHarness.Rules(AllowAnyDenyUnprotected);
            c["mode"] = "dry_run";
        });
        var token = h.Minter.Mint(b => b.Set("ref_protected", "false"));

        var r = await h.AllowedAsync(entity, token);

        var record = Expect.Record(r);
        Assert.Equal("allow", Expect.Str(record, "decision"));
        Assert.Equal("deny", Expect.Str(record, "would_be"));
        Assert.Equal("policy_denied", Expect.Str(record, "code"));
        Assert.Equal("no-unprotected-refs", Expect.Str(record, "rule"));
        Assert.Equal("dry_run", Expect.Str(record, "mode"));
        Assert.Contains("dry_run", Expect.Notice(r, "(policy_denied)"));
        // the job is forwarded with its identity, as it would be once allowed
        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
        Assert.Null(r.UpstreamHeaders["authorization"]);
        Assert.Equal("gitlab-project-16234", r.Credential?.Id);
        Expect.NoTokenLeak(r, token);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Dry_run_forwards_an_invalid_token_and_records_the_would_be_decision(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["mode"] = "dry_run");
        var token = h.Minter.Ci(h.Now.AddHours(-3)).Build();

        var r = await h.AllowedAsync(entity, token, req => req.Headers["X-GitLab-Project-Id"] = "1");

        var record = Expect.Record(r);
        Assert.Equal("allow", Expect.Str(record, "decision"));
        Assert.Equal("deny", Expect.Str(record, "would_be"));
        Assert.Equal("token_expired", Expect.Str(record, "code"));
        Assert.Equal("dry_run", Expect.Str(record, "mode"));
        Assert.Contains("dry_run", Expect.Notice(r, "(token_expired)"));
        // forwarded without any identity: no client-supplied identity header, no credential, no token
        Assert.DoesNotContain(r.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
        Assert.False(r.Authenticated);
        Assert.Null(r.UpstreamHeaders["authorization"]);
        Expect.NoTokenLeak(r, token);
    }

    [Fact]
    public async Task Dry_run_forwards_a_missing_token()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["mode"] = "dry_run");

        var r = await h.AllowedAsync(entity, token: null);

        var record = Expect.Record(r);
        Assert.Equal("deny", Expect.Str(record, "would_be"));
        Assert.Equal("token_missing", Expect.Str(record, "code"));
    }

    [Fact]
    public async Task Dry_run_allowed_request_is_marked_would_be_allow()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["mode"] = "dry_run");

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        var record = Expect.Record(r);
        Assert.Equal("allow", Expect.Str(record, "decision"));
        Assert.Equal("allow", Expect.Str(record, "would_be"));
        Assert.Equal("dry_run", Expect.Str(record, "mode"));
        Assert.False(record.ContainsKey("code"));
        Assert.DoesNotContain(r.Logs, l => l.Message.Contains("would deny", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dry_run_records_a_missing_consumer_as_a_would_be_deny()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c =>
        {
            c["mode"] = "dry_run";
            c["consumer_claim"] = "user_login";
            c["consumer_optional"] = false;
        });

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        var record = Expect.Record(r);
        Assert.Equal("allow", Expect.Str(record, "decision"));
        Assert.Equal("deny", Expect.Str(record, "would_be"));
        Assert.Equal("consumer_not_found", Expect.Str(record, "code"));
        Assert.Contains("dry_run", Expect.Notice(r, "(consumer_not_found)"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Method_rule_reads_the_method_only_when_used(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""
            [{"name":"read-only","claims":{"namespace_path":["acme/**"],"@method":["GET","HEAD"]}}]
            """));
        var token = h.Minter.Mint();

        var get = await h.AllowedAsync(entity, token);
        Assert.Contains("kong.request.get_method", get.PdkCalls);
        Assert.DoesNotContain("kong.request.get_path", get.PdkCalls);
        await h.AllowedAsync(entity, token, req => req.Method = "HEAD");
        Expect.Forbidden(await h.RunAsync(entity, token, req => req.Method = "POST"), "no_rule_matched");
        Expect.Forbidden(await h.RunAsync(entity, token, req => req.Method = "get"), "no_rule_matched"); // case-sensitive
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Path_rules_read_the_path_only_when_used(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""
            [{"name":"api","claims":{"@path":["/api/v1/**"]}},
             {"name":"no-admin","effect":"deny","claims":{"@path":["/api/v1/admin","/api/v1/admin/**"]}}]
            """));
        var token = h.Minter.Mint();

        var ok = await h.AllowedAsync(entity, token, req => req.Path = "/api/v1/deploy/prod");
        Assert.Contains("kong.request.get_path", ok.PdkCalls);
        Assert.DoesNotContain("kong.request.get_method", ok.PdkCalls);
        Expect.Forbidden(await h.RunAsync(entity, token, req => req.Path = "/api/v1/admin/users"), "policy_denied");
        Expect.Forbidden(await h.RunAsync(entity, token, req => req.Path = "/internal"), "no_rule_matched");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Without_request_claims_neither_method_nor_path_is_read(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules(AllowAnyDenyUnprotected));

        var allowed = await h.AllowedAsync(entity, h.Minter.Mint());
        var denied = await h.RunAsync(entity, h.Minter.Mint(b => b.Set("ref_protected", "false")));
        var invalid = await h.RunAsync(entity, h.Minter.AlgNone());

        foreach (var r in new[] { allowed, denied, invalid })
        {
            Assert.DoesNotContain("kong.request.get_method", r.PdkCalls);
            Assert.DoesNotContain("kong.request.get_path", r.PdkCalls);
        }
    }
}
