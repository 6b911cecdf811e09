using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>`--metrics-listen`: valid Prometheus text whose counters follow what the server did.</summary>
public sealed partial class MetricsTests
{
    private const string Audience = "https://api.test";

    [Fact]
    public async Task Metrics_are_valid_prometheus_text_and_count_events_and_decisions_per_route()
    {
        await using var gitlab = FakeGitLab.Start();
        var minter = new TokenMinter(gitlab, Audience);
        using var dir = new TempDir();
        int port = FreePort();
        await using var host = await HostProcess.ServeAsync(dir.DefaultSocket, "-kong-prefix", dir.Path, "--metrics-listen", $"127.0.0.1:{port}");
        await using var kong = new KongSimulator(dir.DefaultSocket, KongProtocol.ProtoBuf, "gitlab-ci-auth", 1, new KongSimulatorOptions { Timeout = Example.KongTimeout });
        string config = $$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "audiences": ["{{{Audience}}}"], "allow_insecure_http": true,
             "rules": [{"name": "main-only", "claims": {"ref": ["main"]}}]}
            """;
        string route = Guid.NewGuid().ToString();
        var entity = kong.AddPlugin(config, routeId: route);
        var onService = kong.AddPlugin(config, serviceId: Guid.NewGuid().ToString()); // no route: route=""
        string token = minter.Mint();
        for (int i = 0; i < 3; i++) Assert.Equal(200, (await kong.Worker(0).RunAsync(entity, "access", Request(token))).Status);
        Assert.Equal(403, (await kong.Worker(0).RunAsync(entity, "access", Request(minter.Mint(b => b.Set("ref", "dev"))))).Status);
        Assert.Equal(401, (await kong.Worker(0).RunAsync(entity, "access", Request(null))).Status);
        Assert.Equal(200, (await kong.Worker(0).RunAsync(onService, "access", Request(token))).Status);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var response = await http.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        var samples = Parse(text);

        Assert.Equal(6, samples["pluginserver_events_total"]);
        Assert.Equal(6, samples["pluginserver_event_duration_seconds_count"]);
        Assert.Equal(3, samples[$"gitlab_ci_auth_decisions_total{{route=\"{route}\",outcome=\"allow\",code=\"allowed\"}}"]);
        Assert.Equal(1, samples[$"gitlab_ci_auth_decisions_total{{route=\"{route}\",outcome=\"deny\",code=\"no_rule_matched\"}}"]);
        Assert.Equal(1, samples[$"gitlab_ci_auth_decisions_total{{route=\"{route}\",outcome=\"deny\",code=\"token_missing\"}}"]);
        Assert.Equal(3, samples[$"gitlab_ci_auth_rule_hits_total{{route=\"{route}\",rule=\"main-only\"}}"]);
        Assert.Equal(1, samples["gitlab_ci_auth_decisions_total{route=\"\",outcome=\"allow\",code=\"allowed\"}"]);
        Assert.Equal(1, samples["gitlab_ci_auth_rule_hits_total{route=\"\",rule=\"main-only\"}"]);
        Assert.True(samples["gitlab_ci_auth_token_cache_hits_total"] >= 2, "the repeated token should hit the cache");
        Assert.True(samples.Where(s => s.Key.StartsWith("gitlab_ci_auth_jwks_fetches_total{", StringComparison.Ordinal) && s.Key.Contains("result=\"success\"")).Sum(s => s.Value) >= 1);
        Assert.True(samples["pluginserver_instances"] >= 1);
        Assert.True(samples["dotnet_gc_allocated_bytes_total"] > 0);
        // every event of an allowed or denied call costs exactly 2 socket writes with the default settings
        Assert.Equal(12, samples["pluginserver_event_round_trips_total"]);

        // the build, and the process as /proc sees it (the published NativeAOT binary)
        Assert.Equal(1, samples["gitlab_ci_auth_build_info{version=\"0.1.0\",protocol=\"ProtoBuf:1\"}"]);
        Assert.Equal(1, samples["gitlab_ci_auth_rs256_openssl_direct"]); // the NativeAOT binary reaches OpenSSL 3 itself
        Assert.Equal(1, samples["gitlab_ci_auth_sha256_openssl_direct"]);
        var stat = File.ReadAllText($"/proc/{host.Pid}/statm").Split(' ');
        double rss = double.Parse(stat[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        Assert.InRange(samples["process_resident_memory_bytes"], rss / 2, rss * 2);
        Assert.InRange(samples["process_open_fds"], 5, Posix.OpenFds(host.Pid) + 5);
        Assert.True(samples["process_max_fds"] >= 1024);
        Assert.True(samples["process_cpu_seconds_total"] > 0);
        Assert.InRange(samples["process_start_time_seconds"], DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        // nothing that reads as Kong's own prometheus plugin
        Assert.DoesNotContain(samples.Keys, k => k.StartsWith("kong_", StringComparison.Ordinal));
        Assert.DoesNotContain("\nkong_", text);
    }

    [Fact]
    public async Task Key_failures_reach_stderr_once_and_the_metric_by_cause()
    {
        await using var gitlab = FakeGitLab.Start();
        var minter = new TokenMinter(gitlab, Audience);
        using var dir = new TempDir();
        int port = FreePort(), closed = FreePort();
        string keys = $"http://127.0.0.1:{closed}/oauth/discovery/keys"; // nothing listens there: connection refused
        await using var host = await HostProcess.ServeAsync(dir.DefaultSocket, "-kong-prefix", dir.Path, "--metrics-listen", $"127.0.0.1:{port}");
        await using var kong = new KongSimulator(dir.DefaultSocket, KongProtocol.ProtoBuf, "gitlab-ci-auth", 1, new KongSimulatorOptions { Timeout = Example.KongTimeout });
        var entity = kong.AddPlugin($$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "audiences": ["{{{Audience}}}"], "allow_insecure_http": true, "jwks_uri": "{{{keys}}}",
             "rules": [{"name": "any", "claims": {"project_id": ["*"]}}]}
            """);

        var results = new List<SimResult>();
        for (int i = 0; i < 5; i++) results.Add(await kong.Worker(0).RunAsync(entity, "access", Request(minter.Mint())));

        Assert.All(results, r => Assert.Equal(503, r.Status));
        string cause = $"keys for {keys} unavailable: connection refused";
        // Kong's error log (what Kong shows by default): once per cooldown, with the cause and the URL
        Assert.StartsWith(cause, Assert.Single(results.SelectMany(r => r.Logs), l => l.Level == "err").Message);
        // the server's own log: once for the change of state, at error
        await host.WaitForStderrAsync(cause);
        Assert.Single(host.Stderr.Split('\n'), l => l.Contains(" error " + cause, StringComparison.Ordinal));

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var samples = Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));
        Assert.Equal(1, samples[$"gitlab_ci_auth_jwks_fetch_failures_total{{source=\"{keys}\",cause=\"connection_refused\"}}"]);
        Assert.Equal(5, samples["gitlab_ci_auth_decisions_total{route=\"\",outcome=\"deny\",code=\"keys_unavailable\"}"]);
    }

    [Fact]
    public async Task Metrics_are_off_by_default_and_a_bad_address_is_a_usage_error()
    {
        var r = await HostProcess.RunAsync("--metrics-listen", "nonsense", "-dump");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--metrics-listen", r.Stderr);
    }

    private static SimRequest Request(string? token)
    {
        var r = new SimRequest { Method = "GET", Path = "/x", Host = "api.test" };
        r.Headers["host"] = "api.test";
        if (token is not null) r.Headers["authorization"] = "Bearer " + token;
        return r;
    }

    /// <summary>Parses the text exposition format strictly: HELP/TYPE comments and `name{labels} value` samples.</summary>
    private static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        var typed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.True(parts.Length == 4 && parts[3] is "counter" or "gauge" or "histogram" or "summary" or "untyped", "bad TYPE line: " + line);
                Assert.True(typed.Add(parts[2]), "TYPE given twice: " + line);
                continue;
            }
            Assert.False(line.StartsWith('#'), "unknown comment: " + line);
            var m = Sample().Match(line);
            Assert.True(m.Success, "not a sample line: " + line);
            string name = m.Groups["name"].Value;
            string family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(typed.Contains(name) || typed.Contains(family), "sample without a TYPE: " + line);
            double value = double.Parse(m.Groups["value"].Value.Replace("+Inf", "Infinity"), CultureInfo.InvariantCulture);
            samples[name + m.Groups["labels"].Value] = value;
        }
        Assert.NotEmpty(samples);
        return samples;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (?<value>[-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN))$""")]
    private static partial Regex Sample();

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
