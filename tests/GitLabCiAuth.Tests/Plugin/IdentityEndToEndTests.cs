using System.Text.Json.Nodes;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>Issue 4, identity: upstream headers, hidden token, log record, Kong credential, consumer, groups, anonymous, PDK cost.</summary>
public sealed class IdentityEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    private static readonly Dictionary<string, string> DefaultIdentityHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        ["X-GitLab-Project-Id"] = "16234",
        ["X-GitLab-Project-Path"] = "acme/platform/billing-api",
        ["X-GitLab-Namespace-Path"] = "acme/platform",
        ["X-GitLab-Pipeline-Id"] = "987654",
        ["X-GitLab-Job-Id"] = "31415926",
        ["X-GitLab-Ref"] = "main",
        ["X-GitLab-Ref-Protected"] = "true",
        ["X-GitLab-Sha"] = "3f2c9e1b7a4d5e6f8091a2b3c4d5e6f708192a3b",
        ["X-GitLab-Environment"] = "production",
        ["X-GitLab-User-Login"] = "jdoe",
        ["X-GitLab-Runner-Id"] = "5120",
    };

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Allowed_request_gets_exactly_the_default_identity_headers_and_no_token(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var token = h.Minter.Mint();

        var r = await h.AllowedAsync(entity, token);

        var expected = new Dictionary<string, string>(DefaultIdentityHeaders, StringComparer.OrdinalIgnoreCase)
        {
            ["host"] = "api.internal.example",
            ["user-agent"] = "curl/8.5.0",
            ["X-Credential-Identifier"] = "gitlab-project-16234",
            ["X-GitLab-Issuer"] = h.GitLab.Issuer,
        };
        Assert.Equal(expected.Keys.Order(StringComparer.OrdinalIgnoreCase), r.UpstreamHeaders.Names.Order(StringComparer.OrdinalIgnoreCase),
            StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in expected)
            Assert.Equal([value], r.UpstreamHeaders.GetValues(name));
        Assert.Null(r.UpstreamHeaders["authorization"]);
        Expect.NoTokenLeak(r, token);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Spoofed_identity_headers_are_replaced_or_removed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var token = h.Minter.Mint(b => b.Remove("environment").Remove("environment_protected").Remove("deployment_tier"));

        var r = await h.AllowedAsync(entity, token, req =>
        {
            req.Headers.Add("X-GitLab-Project-Id", "1");
            req.Headers.Add("x-gitlab-project-id", "2");
            req.Headers.Add("x-gitlab-environment", "production"); // the token has no environment
            req.Headers.Add("X-GITLAB-USER-LOGIN", "root");
            req.Headers.Add("X-GitLab-Ref-Protected", "true");
            req.Headers.Add("X-GitLab-Unrelated", "kept"); // not an identity header of this config
        });

        Assert.Equal(["16234"], r.UpstreamHeaders.GetValues("X-GitLab-Project-Id"));
        Assert.Equal(["jdoe"], r.UpstreamHeaders.GetValues("X-GitLab-User-Login"));
        Assert.Equal(["true"], r.UpstreamHeaders.GetValues("X-GitLab-Ref-Protected"));
        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Environment"), r.UpstreamHeaders.ToString());
        Assert.Equal("kept", r.UpstreamHeaders["X-GitLab-Unrelated"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_full_header_view_is_401_token_malformed_in_every_mode(KongProtocol protocol)
    {
        // kong.request.get_headers returns at most 1000 header lines: past them a second token header or a spoofed
        // identity header could hide, so a request that fills the view is refused, even in dry_run or with anonymous
        await using var h = PluginHarness.Start(protocol);
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "anonymous-ci" });
        var token = h.Minter.Mint(b => b.Remove("environment"));
        foreach (var entity in new[] { h.Add(), h.Add(c => c["mode"] = "dry_run"), h.Add(c => c["anonymous"] = "anonymous-ci") })
        {
            var r = await h.RunAsync(entity, token, req =>
            {
                for (int i = 0; i < 996; i++) req.Headers.Add("x-filler-" + i, "f"); // 1000 lines with the others
                req.Headers.Add("X-GitLab-Environment", "production");
            });
            Expect.InvalidToken(r, "token_malformed");
        }

        // 999 lines (host, user-agent, authorization, 995 fillers, the spoof): the view is complete, the request
        // allowed and the spoofed header removed
        var ok = await h.AllowedAsync(h.Add(), token, req =>
        {
            for (int i = 0; i < 995; i++) req.Headers.Add("x-filler-" + i, "f");
            req.Headers.Add("X-GitLab-Environment", "production");
        });
        Assert.False(ok.UpstreamHeaders.Contains("X-GitLab-Environment"), "a spoofed X-GitLab-Environment reached the upstream");
        Assert.Equal(["16234"], ok.UpstreamHeaders.GetValues("X-GitLab-Project-Id"));
    }

    [Fact]
    public async Task Custom_upstream_header_mapping_replaces_the_default()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c => c["upstream_headers"] = new JsonObject { ["project_id"] = "X-Project", ["pipeline_source"] = "X-Pipeline-Source" });

        var r = await h.AllowedAsync(entity, h.Minter.Mint(), req => req.Headers["x-project"] = "1");

        Assert.Equal(["16234"], r.UpstreamHeaders.GetValues("X-Project"));
        Assert.Equal("push", r.UpstreamHeaders["X-Pipeline-Source"]);
        Assert.DoesNotContain(r.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Identity_header_values_unfit_to_send_are_dropped_never_cut_and_named_in_the_record(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        string longPath = "acme/" + new string('p', 600);
        var token = h.Minter.Mint(b => b.Set("ref", "main\r\nX-Injected: 1\u0000").Set("project_path", longPath).Set("environment", "prod\u202Euction"));

        var r = await h.AllowedAsync(entity, token, req =>
        {
            req.Headers.Add("X-GitLab-Ref", "main");                 // the client's values never stand in for a dropped one
            req.Headers.Add("X-GitLab-Project-Path", "acme/other");
        });

        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Ref"));
        Assert.False(r.UpstreamHeaders.Contains("X-Injected"));
        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Project-Path"), "a value over the cap is removed, never truncated");
        Assert.False(r.UpstreamHeaders.Contains("X-GitLab-Environment"));
        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
        var record = Expect.Record(r);
        var dropped = ((IEnumerable<object?>)record["dropped_headers"]!).Cast<string>().Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["X-GitLab-Environment", "X-GitLab-Project-Path", "X-GitLab-Ref"], dropped);
        // the record carries the values escaped and capped, never raw
        Assert.Equal("main\\u000d\\u000aX-Injected: 1\\u0000", Expect.Str(record, "ref"));
        Assert.Equal("prod\\u202euction", Expect.Str(record, "environment"));
        Assert.EndsWith("…(+" + (longPath.Length - 256) + ")", Expect.Str(record, "project_path"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Token_header_is_kept_when_hide_credentials_is_false(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["hide_credentials"] = false);
        var token = h.Minter.Mint();

        var r = await h.AllowedAsync(entity, token);

        Assert.Equal("Bearer " + token, r.UpstreamHeaders["authorization"]);
        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Log_record_under_gitlab_ci_holds_the_identity_decision_rule_and_mode(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();
        var jti = Guid.NewGuid().ToString();
        var token = h.Minter.Mint(b => b.Set("jti", jti));

        var r = await h.AllowedAsync(entity, token);

        var record = Expect.Record(r);
        var expected = new Dictionary<string, string>
        {
            ["project_id"] = "16234", ["project_path"] = "acme/platform/billing-api", ["namespace_id"] = "4815",
            ["namespace_path"] = "acme/platform", ["pipeline_id"] = "987654", ["job_id"] = "31415926", ["ref"] = "main",
            ["sha"] = "3f2c9e1b7a4d5e6f8091a2b3c4d5e6f708192a3b", ["environment"] = "production", ["runner_id"] = "5120",
            ["user_login"] = "jdoe", ["jti"] = jti, ["token_hash"] = Expect.ShortHash(token),
            ["decision"] = "allow", ["rule"] = "any-project", ["mode"] = "enforce",
        };
        foreach (var (k, v) in expected) Assert.True(Expect.Str(record, k) == v, $"{k}: expected {v}, got {Expect.Flatten(record)}");
        Assert.False(record.ContainsKey("user_email"));
        Assert.False(record.ContainsKey("code"));
        Assert.False(record.ContainsKey("would_be"));
        Assert.DoesNotContain("jdoe@acme.example", Expect.Flatten(r.SerializeValues));
        Expect.NoTokenLeak(r, token);
    }

    /// <summary>
    /// A cached token's identity headers and allow record are copied in wire form from its second request on: every
    /// request still gets exactly the first one's headers and record, and the record follows the rule that allowed it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_cached_token_gets_the_same_identity_and_a_record_naming_its_rule_on_every_request(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules("""
            [{"name":"reads","claims":{"namespace_path":["acme/**"],"@method":["GET"]}},
             {"name":"writes","claims":{"namespace_path":["acme/**"],"@method":["POST"]}}]
            """));
        var token = h.Minter.Mint();

        var first = await h.AllowedAsync(entity, token);
        var firstRecord = Expect.Flatten(Expect.Record(first));
        Assert.Equal("reads", Expect.Str(Expect.Record(first), "rule"));
        for (int i = 0; i < 4; i++)
        {
            bool post = i == 2; // GET twice (the record is kept, then copied), a POST (another rule), GET again
            var r = await h.AllowedAsync(entity, token, req =>
            {
                if (post) req.Method = "POST";
                req.Headers["X-GitLab-Project-Id"] = "1"; // spoofed: replaced every time
            });
            Assert.Equal(Sorted(first), Sorted(r));
            var record = Expect.Record(r);
            Assert.Equal(post ? "writes" : "reads", Expect.Str(record, "rule"));
            if (!post) Assert.Equal(firstRecord, Expect.Flatten(record));
            Assert.Equal("16234", Expect.Str(record, "project_id"));
            Assert.Equal(Expect.ShortHash(token), Expect.Str(record, "token_hash"));
        }
        // another token on the same route: its own identity, not the first token's kept bytes
        var other = await h.AllowedAsync(entity, h.Minter.Mint(b => b.Set("project_id", "777").Set("job_id", "42")));
        Assert.Equal("777", other.UpstreamHeaders["X-GitLab-Project-Id"]);
        Assert.Equal("42", Expect.Str(Expect.Record(other), "job_id"));

        static string Sorted(SimResult r) => string.Join("\n", r.UpstreamHeaders.Names.Order(StringComparer.OrdinalIgnoreCase)
            .Select(n => n.ToLowerInvariant() + ": " + string.Join(",", r.UpstreamHeaders.GetValues(n))));
    }

    [Fact]
    public async Task Log_record_carries_the_email_only_when_configured_and_uses_log_field()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add(c =>
        {
            c["log_user_email"] = true;
            c["log_field"] = "ci_job";
        });

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        Assert.False(r.SerializeValues.ContainsKey("gitlab_ci"));
        var record = Expect.Record(r, "ci_job");
        Assert.Equal("jdoe@acme.example", Expect.Str(record, "user_email"));
        Assert.Equal("16234", Expect.Str(record, "project_id"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Kong_credential_gitlab_project_id_is_authenticated(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add();

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        Assert.True(r.Authenticated);
        Assert.Equal("gitlab-project-16234", r.Credential?.Id);
        Assert.True(string.IsNullOrEmpty(r.Credential!.ConsumerId));
        Assert.True(r.Consumer is null || string.IsNullOrEmpty(r.Consumer.Id), r.Consumer?.ToString());
    }

    [Fact]
    public async Task Credential_template_can_be_changed_or_disabled()
    {
        await using var h = PluginHarness.Start();
        var custom = h.Add(c => c["credential_template"] = "gl-{namespace_id}-{project_id}");
        var disabled = h.Add(c => c["credential_template"] = "");
        var missingClaim = h.Add(c => c["credential_template"] = "gl-{no_such_claim}");
        var token = h.Minter.Mint();

        Assert.Equal("gl-4815-16234", (await h.AllowedAsync(custom, token)).Credential?.Id);

        var r = await h.AllowedAsync(disabled, token);
        Assert.False(r.Authenticated);
        Assert.DoesNotContain("kong.client.authenticate", r.PdkCalls);

        r = await h.AllowedAsync(missingClaim, token);
        Assert.False(r.Authenticated); // nothing is built from missing data
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Authenticated_groups_templates_end_up_in_ngx_ctx(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c => c["authenticated_groups"] = new JsonArray("project:{project_id}", "ns:{namespace_path}", "env:{environment}", "ci-jobs"));
        var token = h.Minter.Mint(b => b.Remove("environment"));

        var r = await h.AllowedAsync(entity, token);

        var groups = Assert.IsType<List<object?>>(r.NgxCtx["authenticated_groups"]);
        Assert.Equal(["project:16234", "ns:acme/platform", "ci-jobs"], groups.Cast<string>());
    }

    [Fact]
    public async Task No_groups_configured_sets_no_ctx()
    {
        await using var h = PluginHarness.Start();
        var entity = h.Add();

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        Assert.False(r.NgxCtx.ContainsKey("authenticated_groups"));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Consumer_found_by_username_is_authenticated_with_the_credential(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var consumerId = Guid.NewGuid().ToString();
        h.Kong.Consumers.Add(new SimConsumer { Id = consumerId, Username = "jdoe", CustomId = "gitlab-user-2718" });
        var entity = h.Add(c =>
        {
            c["consumer_claim"] = "user_login";
            c["consumer_optional"] = false;
        });

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        Assert.Equal(consumerId, r.Consumer?.Id);
        Assert.Equal("jdoe", r.Consumer!.Username);
        Assert.Equal("gitlab-project-16234", r.Credential?.Id);
        Assert.Equal(consumerId, r.Credential!.ConsumerId);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Consumer_not_found_continues_when_optional(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "someone-else" });
        var entity = h.Add(c => c["consumer_claim"] = "user_login");

        var r = await h.AllowedAsync(entity, h.Minter.Mint());

        Assert.True(r.Consumer is null || string.IsNullOrEmpty(r.Consumer.Id), r.Consumer?.ToString());
        Assert.Equal("gitlab-project-16234", r.Credential?.Id);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Consumer_not_found_is_403_consumer_not_found_when_not_optional(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var entity = h.Add(c =>
        {
            c["consumer_claim"] = "user_login";
            c["consumer_optional"] = false;
        });

        var r = await h.RunAsync(entity, h.Minter.Mint(), req => req.Headers["X-GitLab-Project-Id"] = "1");

        Expect.Forbidden(r, "consumer_not_found");
        Assert.False(r.Authenticated);
        var record = Expect.Record(r);
        Assert.Equal("deny", Expect.Str(record, "decision"));
        Assert.Equal("consumer_not_found", Expect.Str(record, "code"));
    }

    [Fact]
    public async Task Consumer_by_id_uses_the_claim_as_a_uuid()
    {
        await using var h = PluginHarness.Start();
        var consumerId = Guid.NewGuid().ToString();
        h.Kong.Consumers.Add(new SimConsumer { Id = consumerId, Username = "billing-api" });
        var entity = h.Add(c =>
        {
            c["consumer_claim"] = "kong_consumer_id";
            c["consumer_by"] = "id";
            c["consumer_optional"] = false;
        });

        var r = await h.AllowedAsync(entity, h.Minter.Mint(b => b.Set("kong_consumer_id", consumerId)));
        Assert.Equal(consumerId, r.Consumer?.Id);

        // a value that is not a UUID cannot name a consumer by id: a clean 403, not a Kong error
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint(b => b.Set("kong_consumer_id", "billing-api"))), "consumer_not_found");
        // the claim is absent
        Expect.Forbidden(await h.RunAsync(entity, h.Minter.Mint()), "consumer_not_found");
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Anonymous_consumer_when_no_token_is_presented(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var anonId = Guid.NewGuid().ToString();
        h.Kong.Consumers.Add(new SimConsumer { Id = anonId, Username = "anonymous-ci" });
        var byName = h.Add(c => c["anonymous"] = "anonymous-ci");
        var byId = h.Add(c => c["anonymous"] = anonId);

        foreach (var entity in new[] { byName, byId })
        {
            var r = await h.AllowedAsync(entity, token: null, req =>
            {
                req.Headers["X-GitLab-Project-Id"] = "16234";
                req.Headers["X-GitLab-User-Login"] = "root";
            });

            Assert.Equal(anonId, r.Consumer?.Id);
            Assert.Equal("anonymous-ci", r.Consumer!.Username);
            Assert.DoesNotContain(r.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
            var record = Expect.Record(r);
            Assert.Equal("allow", Expect.Str(record, "decision"));
            Assert.Equal("anonymous", Expect.Str(record, "code"));
        }

        // like Kong's own auth plugins, a failed credential also continues as anonymous (a logical OR with
        // other auth plugins), never as the job, and its header is left for the next plugin
        string expired = h.Minter.Ci(h.Now.AddHours(-3)).Build();
        var bad = await h.AllowedAsync(byName, expired);
        Assert.Equal(anonId, bad.Consumer?.Id);
        Assert.Null(bad.Credential?.Id);
        Assert.Equal("Bearer " + expired, bad.UpstreamHeaders["authorization"]);
        Assert.Contains(bad.Logs, l => l.Message.Contains("token_expired"));
        Assert.DoesNotContain(bad.UpstreamHeaders.Names, n => n.StartsWith("X-GitLab-", StringComparison.OrdinalIgnoreCase));
        // and a good one authenticates as the job
        var job = await h.AllowedAsync(byName, h.Minter.Mint());
        Assert.Equal("gitlab-project-16234", job.Credential?.Id);
        Assert.True(job.Consumer is null || string.IsNullOrEmpty(job.Consumer.Id));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task With_anonymous_an_earlier_auth_plugins_credential_settles_the_request(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        h.Kong.Consumers.Add(new SimConsumer { Id = Guid.NewGuid().ToString(), Username = "anonymous-ci" });
        var entity = h.Add(c => c["anonymous"] = "anonymous-ci");
        var r = await h.RunAsync(entity, "not-a-gitlab-token", req => req.AuthenticatedCredential = new SimCredential { Id = "key-auth-cred-1" });
        Assert.Equal(200, r.Status);
        Assert.Null(r.Exit);
        Assert.Equal("key-auth-cred-1", r.Credential?.Id);      // untouched
        Assert.DoesNotContain("kong.client.authenticate", r.PdkCalls);
        Assert.Contains("kong.client.get_credential", r.PdkCalls);

        // without `anonymous` the plugin is not part of an OR: the credential of another plugin changes nothing
        var strict = h.Add();
        var denied = await h.RunAsync(strict, "not-a-gitlab-token", req => req.AuthenticatedCredential = new SimCredential { Id = "key-auth-cred-1" });
        Assert.Equal(401, denied.Status);
        Assert.DoesNotContain("kong.client.get_credential", denied.PdkCalls);
    }

    [Fact]
    public async Task ProtoBuf_allowed_request_costs_at_most_5_pdk_calls_in_exactly_2_server_writes()
    {
        await using var h = PluginHarness.Start(KongProtocol.ProtoBuf);
        var entity = h.Add();
        await h.AllowedAsync(entity, h.Minter.Mint()); // starts the instance and fetches the keys

        foreach (var token in new[] { h.Minter.Mint(), h.Minter.Mint() }) // a fresh token, then (below) a cached one
        {
            for (int i = 0; i < 2; i++)
            {
                long writes = h.Host.Server.EventWrites;
                var r = await h.AllowedAsync(entity, token);
                Assert.True(r.PdkCalls.Count <= 5, string.Join(",", r.PdkCalls));
                Assert.Equal(2, h.Host.Server.EventWrites - writes);
                Assert.Equal("kong.request.get_headers", r.PdkCalls[0]);
                Assert.DoesNotContain("kong.request.get_method", r.PdkCalls);
                Assert.DoesNotContain("kong.request.get_path", r.PdkCalls);
            }
        }
    }

    [Fact]
    public async Task MsgPack_allowed_request_costs_at_most_5_pdk_calls()
    {
        await using var h = PluginHarness.Start(KongProtocol.MsgPack);
        var entity = h.Add();
        var token = h.Minter.Mint();
        for (int i = 0; i < 2; i++)
        {
            var r = await h.AllowedAsync(entity, token);
            Assert.True(r.PdkCalls.Count <= 5, string.Join(",", r.PdkCalls));
            Assert.Equal(r.PdkCalls.Count, r.RoundTrips);
        }
    }
}
