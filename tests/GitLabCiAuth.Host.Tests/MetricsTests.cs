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
    public async Task Metrics_are_valid_prometheus_text_and_count_events_and_decisions()
    {
        await using var gitlab = FakeGitLab.Start();
        var minter = new TokenMinter(gitlab, Audience);
        using var dir = new TempDir();
        int port = FreePort();
        await using var host = await HostProcess.ServeAsync(dir.DefaultSocket, "-kong-prefix", dir.Path, "--metrics-listen", $"127.0.0.1:{port}");
        await using var kong = new KongSimulator(dir.DefaultSocket, KongProtocol.ProtoBuf, "gitlab-ci-auth", 1, new KongSimulatorOptions { Timeout = Example.KongTimeout });
        var entity = kong.AddPlugin($$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "audiences": ["{{{Audience}}}"], "allow_insecure_http": true,
             "rules": [{"name": "main-only", "claims": {"ref": ["main"]}}]}
            """);
        string token = minter.Mint();
        for (int i = 0; i < 3; i++) Assert.Equal(200, (await kong.Worker(0).RunAsync(entity, "access", Request(token))).Status);
        Assert.Equal(403, (await kong.Worker(0).RunAsync(entity, "access", Request(minter.Mint(b => b.Set("ref", "dev"))))).Status);
        Assert.Equal(401, (await kong.Worker(0).RunAsync(entity, "access", Request(null))).Status);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var response = await http.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        var samples = Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(5, samples["kong_pluginserver_events_total"]);
        Assert.Equal(5, samples["kong_pluginserver_event_duration_seconds_count"]);
        Assert.Equal(3, samples["gitlab_ci_auth_decisions_total{outcome=\"allow\",code=\"allowed\"}"]);
        Assert.Equal(1, samples["gitlab_ci_auth_decisions_total{outcome=\"deny\",code=\"no_rule_matched\"}"]);
        Assert.Equal(1, samples["gitlab_ci_auth_decisions_total{outcome=\"deny\",code=\"token_missing\"}"]);
        Assert.Equal(3, samples["gitlab_ci_auth_rule_hits_total{rule=\"main-only\"}"]);
        Assert.True(samples["gitlab_ci_auth_token_cache_hits_total"] >= 2, "the repeated token should hit the cache");
        Assert.True(samples.Where(s => s.Key.StartsWith("gitlab_ci_auth_jwks_fetches_total{", StringComparison.Ordinal) && s.Key.Contains("result=\"success\"")).Sum(s => s.Value) >= 1);
        Assert.True(samples["kong_pluginserver_instances"] >= 1);
        Assert.True(samples["dotnet_gc_allocated_bytes_total"] > 0);
        // every event of an allowed or denied call costs exactly 2 socket writes with the default settings
        Assert.Equal(10, samples["kong_pluginserver_event_round_trips_total"]);
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
