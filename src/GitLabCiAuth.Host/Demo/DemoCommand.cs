using System.Globalization;
using System.Text;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Demo;

/// <summary>
/// `gitlab-ci-auth demo`: the product on an embedded default, no Kong and no GitLab needed. One process
/// runs a fake GitLab issuer (own key, discovery and JWKS on 127.0.0.1), the plugin server on a temporary
/// socket and the Kong simulator, then plays a short story of CI calls and prints what Kong would do.
/// </summary>
public static class DemoCommand
{
    private const string Audience = "https://api.acme.example";

    public static async Task<int> RunAsync(TextWriter o, string protocolName)
    {
        var protocol = protocolName == "MsgPack:1" ? KongProtocol.MsgPack : KongProtocol.ProtoBuf;
        await using var gitlab = FakeGitLab.Start();
        await using var selfManaged = FakeGitLab.Start(); // a second GitLab, for the two-issuer route
        var minter = new TokenMinter(gitlab, Audience);
        var minterB = new TokenMinter(selfManaged, Audience);
        var keys = new JwksKeyStore();
        await using var host = PluginTestHost.Start(new GitLabCiAuthPlugin(keys), protocol);

        string policy = $$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "audiences": ["{{{Audience}}}"], "allow_insecure_http": true,
             "rules": [
               {"name": "deploy-from-protected-main", "claims": {"namespace_path": ["acme/platform"], "ref": ["main"], "ref_protected": ["true"], "environment": ["production"]}},
               {"name": "no-forks", "effect": "deny", "claims": {"project_path": ["!acme/**"]}}
             ],
             "authenticated_groups": ["project:{project_id}", "ns:{namespace_path}"]}
            """;
        var deployRoute = host.Kong.AddPlugin(policy, routeId: "7a1c0f8e-0000-4000-8000-000000000001");
        var dryRunRoute = host.Kong.AddPlugin(policy.Replace("\"allow_insecure_http\": true,", "\"allow_insecure_http\": true, \"mode\": \"dry_run\","),
            routeId: "7a1c0f8e-0000-4000-8000-000000000002");

        // one route, two GitLabs: the acme rule is pinned to the first, the tools rule to the second; the credential
        // names the issuer ({iss}: both fakes share the host 127.0.0.1, so {iss_host} could not tell them apart)
        var twoIssuers = host.Kong.AddPlugin($$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "issuers": [{"issuer": "{{{selfManaged.Issuer}}}"}], "audiences": ["{{{Audience}}}"],
             "allow_insecure_http": true, "credential_template": "gitlab-{iss}-project-{project_id}",
             "rules": [
               {"name": "acme-on-gitlab-a", "claims": {"iss": ["{{{gitlab.Issuer}}}"], "namespace_path": ["acme/**"]}},
               {"name": "tools-on-gitlab-b", "claims": {"iss": ["{{{selfManaged.Issuer}}}"], "namespace_path": ["tools/**"]}}
             ]}
            """, routeId: "7a1c0f8e-0000-4000-8000-000000000003");

        o.WriteLine("gitlab-ci-auth demo: a fake GitLab at " + gitlab.Issuer + " (and a second one at " + selfManaged.Issuer + "), the plugin server on " + host.SocketPath);
        o.WriteLine("and Kong played by the simulator (" + (protocol == KongProtocol.ProtoBuf ? "ProtoBuf:1" : "MsgPack:1") + "). Route policy: deploy jobs of acme/platform");
        o.WriteLine("from protected main to production; anything outside acme/ is denied.");
        o.WriteLine();

        var rows = new List<string[]>();
        async Task<SimResult> Call(string story, PluginEntity route, string? token)
        {
            var request = new SimRequest { Method = "POST", Path = "/deployments" };
            request.Headers["host"] = "api.acme.example";
            request.Headers["x-gitlab-project-id"] = "1"; // a spoofing attempt: must never reach the upstream as sent
            if (token is not null) request.Headers["authorization"] = "Bearer " + token;
            var r = await host.Kong.Worker(0).RunAsync(route, "access", request);
            rows.Add([(rows.Count + 1).ToString(CultureInfo.InvariantCulture), story, r.Status.ToString(CultureInfo.InvariantCulture), Outcome(r)]);
            return r;
        }

        await host.Kong.Worker(0).RunAsync(deployRoute, "access", new SimRequest()); // starts the instance (and fetches the keys)
        long writesBefore = host.Server.EventWrites;
        var allowed = await Call("deploy job on protected main", deployRoute, minter.Mint());
        long allowedWrites = host.Server.EventWrites - writesBefore;
        var denied = await Call("feature-branch job", deployRoute, minter.Mint(b => b.Set("ref", "feature/login").Set("ref_protected", "false")));
        await Call("expired token (job finished an hour ago)", deployRoute, minter.Mint(b => b.IssuedAt(DateTimeOffset.UtcNow.AddHours(-2), TimeSpan.FromHours(1))));
        await Call("token minted for another audience", deployRoute, minter.Mint(b => b.Set("aud", "https://vault.acme.example")));
        await Call("no token at all", deployRoute, null);
        int fetchesBefore = gitlab.KeysRequests;
        gitlab.Rotate();
        var rotated = await Call("GitLab rotated its key: new kid", deployRoute, minter.Mint());
        int refetches = gitlab.KeysRequests - fetchesBefore;
        var dry = await Call("feature branch on a dry_run route", dryRunRoute, minter.Mint(b => b.Set("ref", "feature/login").Set("ref_protected", "false")));
        var fromA = await Call("two-issuer route: acme job from the first GitLab", twoIssuers, minter.Mint());
        var fromB = await Call("two-issuer route: tools job from the second GitLab", twoIssuers,
            minterB.Mint(b => b.Set("namespace_path", "tools/ci").Set("project_path", "tools/ci/images")));
        var acmeFromB = await Call("two-issuer route: an 'acme' job from the second GitLab", twoIssuers, minterB.Mint());

        WriteTable(o, ["#", "CI call", "status", "what Kong does"], rows);
        o.WriteLine();
        o.WriteLine("1. allowed: the upstream receives the job's identity from the token (the spoofed header was replaced):");
        foreach (var (name, value) in allowed.UpstreamHeaders.OrderBy(h => h.Key, StringComparer.Ordinal))
            if (name.StartsWith("x-gitlab-", StringComparison.OrdinalIgnoreCase) || name == "authorization")
                o.WriteLine($"     {name}: {value}");
        o.WriteLine("     authorization: " + (allowed.UpstreamHeaders.Contains("authorization") ? "(forwarded)" : "(removed before proxying)"));
        o.WriteLine($"   Kong credential: {allowed.Credential?.Id}   acl groups: {Render(allowed.NgxCtx.GetValueOrDefault("authenticated_groups"))}");
        o.WriteLine("   log record (every Kong log plugin sees it under \"gitlab_ci\"):");
        o.WriteLine("     " + Render(allowed.SerializeValues.GetValueOrDefault("gitlab_ci")));
        o.WriteLine();
        o.WriteLine("2. denied: the rule trace in Kong's log:");
        foreach (var line in denied.Logs) o.WriteLine($"     [{line.Level}] {line.Message}");
        o.WriteLine("   body: " + denied.Exit?.BodyText);
        o.WriteLine();
        o.WriteLine($"6. after the rotation the plugin refetched the key set {refetches} time(s) and accepted the new kid ({rotated.Status}).");
        o.WriteLine($"7. dry_run: forwarded ({dry.Status}); the log record says what enforce would have done:");
        o.WriteLine("     " + Render(dry.SerializeValues.GetValueOrDefault("gitlab_ci")));
        o.WriteLine("8-10. two issuers on one route: project 16234 of one GitLab is not project 16234 of the other:");
        foreach (var r in new[] { fromA, fromB })
            o.WriteLine($"     X-GitLab-Issuer: {r.UpstreamHeaders["X-GitLab-Issuer"]}   credential: {r.Credential?.Id}");
        o.WriteLine($"     the 'acme' job from the second GitLab: {acmeFromB.Status} ({Outcome(acmeFromB)}): the acme rule is pinned to the first");
        o.WriteLine();
        o.WriteLine($"The allowed call cost {allowed.PdkCalls.Count} PDK calls in {allowedWrites} socket round trips with Kong.");

        bool ok = allowed.Status == 200 && denied.Status == 403 && rotated.Status == 200 && dry.Status == 200 && refetches >= 1
                  && fromA.Status == 200 && fromB.Status == 200 && acmeFromB.Status == 403 && fromA.Credential?.Id != fromB.Credential?.Id;
        if (!ok) o.WriteLine("UNEXPECTED: the story did not go as it should; see the table above.");
        return ok ? 0 : 1;
    }

    private static string Outcome(SimResult r)
    {
        if (r.Exit is { } exit)
        {
            string body = exit.BodyText;
            string code = ExtractCode(body);
            return $"answers {exit.Status} {code}";
        }
        if (r.Status != 200) return "failed: " + r.Error;
        var rec = r.SerializeValues.GetValueOrDefault("gitlab_ci") as Dictionary<string, object?>;
        if (rec?.GetValueOrDefault("would_be") is "deny")
            return $"proxies (dry_run: would deny, {rec.GetValueOrDefault("code")})";
        return $"proxies as {r.Credential?.Id ?? "-"} (rule {rec?.GetValueOrDefault("rule")})";
    }

    private static string ExtractCode(string json)
    {
        int i = json.IndexOf("\"code\":\"", StringComparison.Ordinal);
        if (i < 0) return "";
        i += 8;
        int j = json.IndexOf('"', i);
        return j < 0 ? "" : json[i..j];
    }

    private static void WriteTable(TextWriter o, string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd();
        o.WriteLine(Line(header));
        o.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var r in rows) o.WriteLine(Line(r));
    }

    /// <summary>A compact JSON-like rendering of the simulator's Lua values.</summary>
    private static string Render(object? v)
    {
        var sb = new StringBuilder();
        void W(object? x)
        {
            switch (x)
            {
                case null: sb.Append("null"); break;
                case string s: sb.Append('"').Append(s).Append('"'); break;
                case bool b: sb.Append(b ? "true" : "false"); break;
                case double d: sb.Append(d.ToString(CultureInfo.InvariantCulture)); break;
                case Dictionary<string, object?> m:
                    sb.Append('{');
                    bool first = true;
                    foreach (var (k, val) in m) { if (!first) sb.Append(", "); first = false; sb.Append(k).Append(": "); W(val); }
                    sb.Append('}');
                    break;
                case List<object?> l:
                    sb.Append('[');
                    for (int i = 0; i < l.Count; i++) { if (i > 0) sb.Append(", "); W(l[i]); }
                    sb.Append(']');
                    break;
                default: sb.Append(Convert.ToString(x, CultureInfo.InvariantCulture)); break;
            }
        }
        W(v);
        return sb.ToString();
    }
}
