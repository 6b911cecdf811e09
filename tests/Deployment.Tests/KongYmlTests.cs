using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Deployment.Tests.Infrastructure;
using Kong.PluginServer.Testing;
using YamlDotNet.RepresentationModel;
using static Deployment.Tests.Infrastructure.Deployment;

namespace Deployment.Tests;

/// <summary>kong/kong.yml: every gitlab-ci-auth config is valid for the dumped schema and runs in the plugin, and the
/// routes' policies, rate limits, ACLs and logs do what the comments say.</summary>
public sealed class KongYmlTests
{
    public static TheoryData<string> GitLabCiAuthEntries()
    {
        var data = new TheoryData<string>();
        foreach (var use in KongYml.Plugins.Where(p => p.Name == PluginName)) data.Add(use.Where);
        return data;
    }

    private static KongPluginUse Entry(string where) => KongYml.Plugins.Single(p => p.Name == PluginName && p.Where == where);

    private static IEnumerable<(KongRoute Route, KongPluginUse Auth)> ProtectedRoutes() =>
        KongYml.Routes.Select(r => (r, KongYml.EffectivePlugins(r).GetValueOrDefault(PluginName)!));

    [Fact]
    public void Declarative_format_3_0_with_every_route_behind_gitlab_ci_auth()
    {
        var version = Yaml.ToJson(Yaml.Get(KongYml.Root, "_format_version")!);
        Assert.Equal("3.0", version?.GetValue<string>());   // a string: unquoted 3.0 is a number and Kong rejects it

        Assert.True(KongYml.Routes.Count >= 3, "expected the three example routes");
        Assert.Equal(KongYml.Routes.Count, KongYml.Routes.Select(r => r.Name).Distinct().Count());
        foreach (var (route, auth) in ProtectedRoutes())
        {
            Assert.True(auth is not null, $"route {route.Name} is not protected by {PluginName}");
            Assert.Contains(KongYml.Services, s => s.Name == route.Service);
            Assert.NotEmpty(route.Paths);
        }
        foreach (var p in KongYml.Plugins)
        {
            var keys = p.Entry.Children.Keys.Cast<YamlScalarNode>().Select(k => k.Value!).ToList();
            Assert.All(keys, k => Assert.Contains(k, KongDeclarative.PluginEntityFields));
            Assert.True(p.Config is not null, $"{p} has no config");
        }
    }

    [Theory]
    [MemberData(nameof(GitLabCiAuthEntries))]
    public async Task Config_validates_against_the_dumped_schema(string where)
    {
        var schema = await ConfigSchemaAsync();
        var config = Entry(where).Config!;

        var errors = KongSchema.Validate(schema, config);

        Assert.True(errors.Count == 0, $"{where}:\n" + string.Join('\n', errors));
        // every field name used is one the schema declares (the validator's unknown-field check, spelt out)
        Assert.All(config.Select(kv => kv.Key), k => Assert.Contains(k, KongSchema.FieldNames(schema)));

        // the whole plugin entity as Kong inserts it: consumer and protocols typedefs, entity checks
        var entity = new JsonObject { ["config"] = config.DeepClone() };
        foreach (var key in new[] { "protocols", "consumer" })
            if (Entry(where).Entry.Children.ContainsKey(key)) entity[key] = Yaml.ToJson(Yaml.Get(Entry(where).Entry, key)!);
        var verdict = KongSchema.ValidatePlugin(KongSchema.PluginSchema(await DumpAsync(), PluginName), entity);
        Assert.True(verdict.Accepted, $"{where}: {verdict}");
    }

    [Fact]
    public async Task Schema_validation_rejects_what_kong_would_reject()
    {
        var schema = await ConfigSchemaAsync();
        var good = KongYml.Plugins.First(p => p.Name == PluginName).Config!;
        Assert.Empty(KongSchema.Validate(schema, good));

        void Rejects(string expected, Action<JsonObject> change)
        {
            var c = (JsonObject)good.DeepClone();
            change(c);
            var errors = KongSchema.Validate(schema, c);
            Assert.True(errors.Any(e => e.Contains(expected, StringComparison.Ordinal)), $"expected '{expected}', got:\n" + string.Join('\n', errors));
        }

        Rejects("config.rule: unknown field", c => c["rule"] = c["rules"]!.DeepClone());
        // (a config with neither issuer nor issuers is refused by the dump's entity check: EntityChecksTests)
        Rejects("config.issuers[1].issuer: required field missing", c => c["issuers"] = new JsonArray(
            new JsonObject { ["issuer"] = "https://gitlab.com" }, new JsonObject { ["audiences"] = new JsonArray("https://api.acme.example") }));
        Rejects("config.mode: expected one of", c => c["mode"] = "block");
        Rejects("config.rules[0].effect: expected one of", c => c["rules"]![0]!["effect"] = "permit");
        Rejects("config.clock_skew_seconds: value should be between 0 and 600", c => c["clock_skew_seconds"] = 3600);
        Rejects("config.audiences: length must be at least 1", c => c["audiences"] = new JsonArray());
        Rejects("config.algorithms[0]: expected one of", c => c["algorithms"] = new JsonArray("HS256"));
        Rejects("config.expose_deny_reason: expected a boolean", c => c["expose_deny_reason"] = "yes");
        Rejects("config.rules[0].claims: expected a map", c => c["rules"]![0]!["claims"] = new JsonArray("ref"));

        // the classic YAML trap: an unquoted true is a boolean, not GitLab's "true" string
        var trap = Yaml.ToJson(Yaml.Parse("ref_protected: [true]"))!.AsObject();
        Rejects("config.rules[0].claims.ref_protected[0]: expected a string, got a boolean", c => c["rules"]![0]!["claims"] = trap.DeepClone());
    }

    [Theory]
    [MemberData(nameof(GitLabCiAuthEntries))]
    public async Task Config_starts_an_instance_of_the_plugin(string where)
    {
        await using var h = RouteHarness.Start(Entry(where));

        var missing = await h.RunAsync(null);
        Assert.True(missing.Outcome == SimOutcome.Exited && missing.Status == 401, $"{where}: {missing}");   // not a 500: the instance started
        Assert.Equal("token_missing", RouteHarness.Code(missing));
        Assert.NotNull(missing.InstanceId);

        var other = await h.RunAsync(h.Minter.Mint(b => b.Set("aud", "https://other.example")));
        Assert.Equal("audience_mismatch", RouteHarness.Code(other));
        Assert.Equal(missing.InstanceId, other.InstanceId);
    }

    /// <summary>A request each route must let through (used for the rate-limiting, acl and log checks).</summary>
    private static readonly Dictionary<string, (string Method, string Path, string Claims)> Allowed = new()
    {
        ["deploy-production"] = ("POST", "/deploy/production", ""),
        ["reports"] = ("GET", "/reports/weekly", "namespace_path=acme/data;project_path=acme/data/warehouse;project_id=777"),
        ["deploy-staging"] = ("POST", "/deploy/staging", "environment=review/feature-login;deployment_tier=development;ref=feature/login;ref_protected=false"),
        ["artifacts"] = ("PUT", "/artifacts/build.tar.gz", ""),
    };

    /// <summary>Claims changed from the minter's job (acme/platform/billing-api, protected main, production, self-hosted runner); "k=" removes k.</summary>
    private static Dictionary<string, string?> Claims(string spec)
    {
        var claims = new Dictionary<string, string?>();
        foreach (var kv in spec.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2)))
            claims[kv[0]] = kv[1].Length == 0 ? null : kv[1];   // a later value wins
        return claims;
    }

    [Theory]
    // (a) production deploys: protected main of acme/platform, protected production environment, own runners
    [InlineData("deploy-production", "POST", "/deploy/production", "", 200, null)]
    [InlineData("deploy-production", "POST", "/deploy/production", "ref=feature/login;ref_protected=false;ref_path=refs/heads/feature/login", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "ref_protected=false", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "ref_type=tag;ref_path=refs/tags/main", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "environment=staging;deployment_tier=staging", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "environment=;environment_protected=;deployment_tier=", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "environment_protected=false", 403, "no_rule_matched")]
    [InlineData("deploy-production", "POST", "/deploy/production", "runner_environment=gitlab-hosted", 403, "policy_denied")]
    [InlineData("deploy-production", "POST", "/deploy/production", "namespace_path=acme/platform-fork;project_path=acme/platform-fork/billing-api", 403, "no_rule_matched")]
    // (b) reports: read-only for any project of the acme group and its subgroups, no admin pages
    [InlineData("reports", "GET", "/reports/weekly", "namespace_path=acme/data;project_path=acme/data/warehouse", 200, null)]
    [InlineData("reports", "GET", "/reports/weekly", "namespace_path=acme;project_path=acme/website;ref=feature/x;ref_protected=false", 200, null)]
    [InlineData("reports", "HEAD", "/reports/weekly", "", 200, null)]
    [InlineData("reports", "GET", "/reports/administrators", "", 200, null)]
    [InlineData("reports", "POST", "/reports/weekly", "", 403, "no_rule_matched")]
    [InlineData("reports", "DELETE", "/reports/weekly", "", 403, "no_rule_matched")]
    [InlineData("reports", "GET", "/reports/weekly", "namespace_path=acmecorp;project_path=acmecorp/tools", 403, "no_rule_matched")]
    [InlineData("reports", "GET", "/reports/weekly", "namespace_path=evil/acme;project_path=evil/acme/tools", 403, "no_rule_matched")]
    [InlineData("reports", "GET", "/reports/admin", "", 403, "policy_denied")]
    [InlineData("reports", "GET", "/reports/admin/users", "", 403, "policy_denied")]
    // (c) staging deploys, scoped by environment: staging and review apps of any acme project and branch
    [InlineData("deploy-staging", "POST", "/deploy/staging", "environment=staging;deployment_tier=staging;ref=feature/x;ref_protected=false", 200, null)]
    [InlineData("deploy-staging", "POST", "/deploy/staging", "environment=review/feature-login;deployment_tier=development;ref=feature/login;ref_protected=false", 200, null)]
    [InlineData("deploy-staging", "POST", "/deploy/staging", "", 403, "no_rule_matched")]
    [InlineData("deploy-staging", "POST", "/deploy/staging", "environment=review/Feature_Login;deployment_tier=development", 403, "no_rule_matched")]
    [InlineData("deploy-staging", "POST", "/deploy/staging", "environment=staging;deployment_tier=production", 403, "no_rule_matched")]
    [InlineData("deploy-staging", "POST", "/deploy/staging", "environment=staging;deployment_tier=staging;namespace_path=other;project_path=other/tools", 403, "no_rule_matched")]
    public async Task Route_policy_decides_like_its_comment_says(string route, string method, string path, string claims, int status, string? code)
    {
        var kongRoute = KongYml.Route(route);
        Assert.True(kongRoute.Paths.Any(p => path.StartsWith(p, StringComparison.Ordinal)), $"{path} does not reach route {route}");
        Assert.True(kongRoute.Methods.Count == 0 || kongRoute.Methods.Contains(method), $"{method} does not reach route {route}");
        var plugins = KongYml.EffectivePlugins(kongRoute);
        await using var h = RouteHarness.Start(plugins[PluginName]);
        var wanted = Claims(claims);

        var r = await h.RunAsync(h.Token(wanted), method, path);

        if (status != 200)
        {
            Assert.True(r.Outcome == SimOutcome.Exited && r.Status == status, r.ToString());
            Assert.Equal(code, RouteHarness.Code(r));
            return;
        }
        Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r + "\n" + string.Join('\n', r.Logs));
        string projectPath = wanted.GetValueOrDefault("project_path") ?? "acme/platform/billing-api";
        Assert.Equal(projectPath, r.UpstreamHeaders["X-GitLab-Project-Path"]);
        Assert.Null(r.UpstreamHeaders["authorization"]);
        // what Kong's acl plugin would decide on the groups the plugin set: an allowed job is never blocked there
        if (plugins.TryGetValue("acl", out var acl))
        {
            var allow = acl.Config!["allow"]!.AsArray().Select(g => (string)g!).ToList();
            var groups = RouteHarness.Groups(r);
            Assert.True(groups.Intersect(allow).Any(), $"acl on {route} allows [{string.Join(", ", allow)}] but the job got [{string.Join(", ", groups)}]");
        }
    }

    [Fact]
    public async Task Rate_limiting_counts_per_gitlab_project_on_every_route()
    {
        var limits = KongYml.Plugins.Where(p => p.Name == "rate-limiting").ToList();
        Assert.NotEmpty(limits);
        Assert.All(limits, p => Assert.Equal("credential", (string?)p.Config!["limit_by"]));

        var schema = await ConfigSchemaAsync();
        string defaultTemplate = (string)KongSchema.Field(schema, "credential_template")!["default"]!;
        foreach (var (route, auth) in ProtectedRoutes())
        {
            Assert.True(KongYml.EffectivePlugins(route).TryGetValue("rate-limiting", out var rl) && (string?)rl.Config!["limit_by"] == "credential",
                $"route {route.Name} is not rate-limited by credential");
            // without a credential, limit_by: credential silently falls back to the client IP (a shared runner NAT)
            string template = (string?)auth.Config!["credential_template"] ?? defaultTemplate;
            Assert.Contains("{project_id}", template);

            var (method, path, claims) = Allowed[route.Name];
            await using var h = RouteHarness.Start(auth);
            var job1 = await h.RunAsync(h.Token(Claims(claims)), method, path);
            var job2 = await h.RunAsync(h.Token(Claims(claims + ";job_id=31415927;pipeline_id=987655")), method, path);
            var otherProject = await h.RunAsync(h.Token(Claims(claims + ";project_id=4242")), method, path);
            Assert.True(job1.Status == 200 && job2.Status == 200 && otherProject.Status == 200, $"{route.Name}: {job1}\n{job2}\n{otherProject}");
            Assert.True(job1.Authenticated);
            Assert.Equal(job1.Credential?.Id, job2.Credential?.Id);          // one counter per project ...
            Assert.NotEqual(job1.Credential?.Id, otherProject.Credential?.Id); // ... not per job, not shared
            Assert.EndsWith("project-4242", otherProject.Credential?.Id);
        }
    }

    [Fact]
    public async Task Acl_allows_only_groups_the_routes_authenticated_groups_templates_can_produce()
    {
        var acls = KongYml.Plugins.Where(p => p.Name == "acl").ToList();
        Assert.NotEmpty(acls);
        foreach (var acl in acls)
        {
            Assert.Null(acl.Config!["deny"]);
            var allow = acl.Config["allow"]!.AsArray().Select(g => (string)g!).ToList();
            Assert.NotEmpty(allow);
            var routes = KongYml.Routes.Where(r => KongYml.EffectivePlugins(r).GetValueOrDefault("acl") == acl).ToList();
            Assert.NotEmpty(routes);
            foreach (var route in routes)
            {
                var auth = KongYml.EffectivePlugins(route)[PluginName];
                var templates = auth.Config!["authenticated_groups"]?.AsArray().Select(t => (string)t!).ToList() ?? [];
                Assert.True(templates.Count > 0, $"acl on {route.Name} but {PluginName} sets no authenticated_groups there");
                foreach (var group in allow)
                    Assert.True(templates.Any(t => TemplateRegex(t).IsMatch(group)),
                        $"acl on {route.Name} allows '{group}', which none of [{string.Join(", ", templates)}] can produce");

                // and the instance really produces one for the route's typical job
                var (method, path, claims) = Allowed[route.Name];
                await using var h = RouteHarness.Start(auth);
                var r = await h.RunAsync(h.Token(Claims(claims)), method, path);
                Assert.Equal(200, r.Status);
                Assert.Contains(RouteHarness.Groups(r), allow.Contains);
            }
        }
    }

    [Fact]
    public async Task File_log_covers_every_route_and_gets_the_jobs_identity()
    {
        foreach (var (route, auth) in ProtectedRoutes())
        {
            Assert.True(KongYml.EffectivePlugins(route).TryGetValue("file-log", out var log), $"no file-log on route {route.Name}");
            Assert.StartsWith("/", (string?)log.Config!["path"]);

            var (method, path, claims) = Allowed[route.Name];
            await using var h = RouteHarness.Start(auth);
            var r = await h.RunAsync(h.Token(Claims(claims)), method, path);
            string field = (string?)auth.Config!["log_field"] ?? "gitlab_ci";
            var record = Assert.IsType<Dictionary<string, object?>>(r.SerializeValues[field]);
            Assert.Equal("allow", record["decision"]);
            Assert.Equal(Claims(claims).GetValueOrDefault("project_path") ?? "acme/platform/billing-api", record["project_path"]);
            Assert.False(record.ContainsKey("user_email"));
        }
    }

    /// <summary>The strings a claim template can render: its literal text with each {claim} standing for a non-empty value.</summary>
    private static Regex TemplateRegex(string template) =>
        new("^" + string.Concat(Regex.Split(template, @"(\{[^{}]+\})").Select(part => part.StartsWith('{') ? ".+" : Regex.Escape(part))) + "$");
}
