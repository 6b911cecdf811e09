using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using Kong.PluginServer.Hosting;
using Kong.PluginServer.Server;
using Prometheus;

namespace GitLabCiAuth.Host.Metrics;

/// <summary>
/// `--metrics-listen 127.0.0.1:PORT`: Prometheus text at /metrics (prometheus-net does the exposition).
/// Counters kept by the server and the plugin are copied in just before each scrape; the event latency
/// histogram is observed per event. Names: <c>pluginserver_</c> for the plugin server, <c>gitlab_ci_auth_</c> for the
/// plugin (and the build), the usual <c>process_</c> and <c>dotnet_</c> for the process; never <c>kong_</c>, which is
/// Kong's own prometheus plugin's.
/// </summary>
public sealed class MetricsEndpoint : IServerObserver, IDisposable
{
    private static readonly double[] LatencyBuckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5];

    private readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    private readonly Histogram _latency;
    private readonly MetricServer _server;
    private KongPluginServer? _plugin;

    /// <param name="hostPort">Where to listen (HOST:PORT).</param>
    /// <param name="version">The binary's version, and <paramref name="protocol"/> the one it serves: the build-info labels.</param>
    public MetricsEndpoint(string hostPort, string version, string protocol)
    {
        var (host, port) = Parse(hostPort);
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _latency = f.CreateHistogram("pluginserver_event_duration_seconds", "Time the server spent on one event (Kong's round trips included).",
            new HistogramConfiguration { Buckets = LatencyBuckets });

        var events = f.CreateCounter("pluginserver_events_total", "Events served.");
        var writes = f.CreateCounter("pluginserver_event_round_trips_total", "Socket writes to Kong during events (round trips).");
        var connections = f.CreateGauge("pluginserver_connections", "Open Kong connections.");
        var inFlight = f.CreateGauge("pluginserver_events_in_flight", "Events being served.");
        var instances = f.CreateGauge("pluginserver_instances", "Live plugin instances.");
        var handlers = f.CreateGauge("pluginserver_handlers", "Distinct configs (instances with the same config share one).");
        var allocated = f.CreateCounter("dotnet_gc_allocated_bytes_total", "Bytes allocated on the managed heap since start.");
        var gcs = f.CreateCounter("dotnet_gc_collections_total", "Garbage collections.", new CounterConfiguration { LabelNames = ["generation"] });
        var cpu = f.CreateCounter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.");
        var resident = f.CreateGauge("process_resident_memory_bytes", "Resident memory size, in bytes.");
        var virtualMemory = f.CreateGauge("process_virtual_memory_bytes", "Virtual memory size, in bytes.");
        var openFds = f.CreateGauge("process_open_fds", "Open file descriptors.");
        var maxFds = f.CreateGauge("process_max_fds", "The limit of open file descriptors.");
        var started = f.CreateGauge("process_start_time_seconds", "Start time of the process since the epoch, in seconds.");
        var build = f.CreateGauge("gitlab_ci_auth_build_info", "The binary's version and the Kong protocol it serves; always 1.",
            new GaugeConfiguration { LabelNames = ["version", "protocol"] });
        var decisions = f.CreateCounter("gitlab_ci_auth_decisions_total", "Decisions by route, outcome and code.", new CounterConfiguration { LabelNames = ["route", "outcome", "code"] });
        var ruleHits = f.CreateCounter("gitlab_ci_auth_rule_hits_total", "Deciding rule of each policy decision, by route.", new CounterConfiguration { LabelNames = ["route", "rule"] });
        var wouldDeny = f.CreateCounter("gitlab_ci_auth_dry_run_would_deny_total", "Requests a dry_run route let through that enforce would deny.", new CounterConfiguration { LabelNames = ["route", "code"] });
        var fetches = f.CreateCounter("gitlab_ci_auth_jwks_fetches_total", "Key set fetches by result.", new CounterConfiguration { LabelNames = ["source", "result"] });
        var fetchFailures = f.CreateCounter("gitlab_ci_auth_jwks_fetch_failures_total", "Failed key set fetches by cause (connection_refused, connection, name_resolution, tls, timeout, http_status, body_too_large, invalid_json, invalid_key_set, discovery, other).",
            new CounterConfiguration { LabelNames = ["source", "cause"] });
        var keyAge = f.CreateGauge("gitlab_ci_auth_jwks_key_set_age_seconds", "Age of the key set in use (since its last successful fetch).", new GaugeConfiguration { LabelNames = ["source"] });
        var keyCount = f.CreateGauge("gitlab_ci_auth_jwks_keys", "Keys in the key set.", new GaugeConfiguration { LabelNames = ["source"] });
        var cacheHits = f.CreateCounter("gitlab_ci_auth_token_cache_hits_total", "Verified-token cache hits.");
        var cacheMisses = f.CreateCounter("gitlab_ci_auth_token_cache_misses_total", "Verified-token cache misses.");
        var cacheSize = f.CreateGauge("gitlab_ci_auth_token_cache_entries", "Tokens in the verified-token caches.");
        var rs256Direct = f.CreateGauge("gitlab_ci_auth_rs256_openssl_direct",
            "1 when RS256 signatures are checked by OpenSSL 3 directly (contexts prepared per key), 0 when through .NET's RSA (OpenSSL 1.1, or the known-answer test failed).");
        var sha256Direct = f.CreateGauge("gitlab_ci_auth_sha256_openssl_direct",
            "1 when token and signing-input SHA-256 digests are computed by OpenSSL 3 directly (the algorithm fetched once), 0 when through .NET's SHA256.");
        build.WithLabels(version, protocol).Set(1);
        sha256Direct.Set(GitLabCiAuth.Tokens.TokenHash.ComputedByOpenSsl ? 1 : 0);
        rs256Direct.Set(SigningKey.Rs256ThroughOpenSsl ? 1 : 0);
        started.Set(ProcessStats.StartTimeSeconds);

        _registry.AddBeforeCollectCallback(() =>
        {
            if (_plugin is { } p)
            {
                events.IncTo(p.EventsServed);
                writes.IncTo(p.EventWrites);
                connections.Set(p.ActiveConnections);
                inFlight.Set(p.InFlightEvents);
                instances.Set(p.InstanceCount);
                handlers.Set(p.HandlerCount);
            }
            allocated.IncTo(GC.GetTotalAllocatedBytes());
            for (int g = 0; g <= GC.MaxGeneration; g++) gcs.WithLabels(g.ToString(System.Globalization.CultureInfo.InvariantCulture)).IncTo(GC.CollectionCount(g));
            cpu.IncTo(ProcessStats.CpuSeconds);
            var (rss, vsz) = ProcessStats.Memory();
            resident.Set(rss);
            virtualMemory.Set(vsz);
            openFds.Set(ProcessStats.OpenFds());
            maxFds.Set(ProcessStats.MaxFds());
            foreach (var ((route, outcome, code), n) in GitLabCiAuthMetrics.Decisions) decisions.WithLabels(route, outcome, code).IncTo(n);
            foreach (var ((route, rule), n) in GitLabCiAuthMetrics.RuleHits) ruleHits.WithLabels(route, rule).IncTo(n);
            foreach (var ((route, code), n) in GitLabCiAuthMetrics.WouldDenyByCode) wouldDeny.WithLabels(route, code).IncTo(n);
            var now = DateTimeOffset.UtcNow;
            foreach (var s in JwksKeyStore.Shared.GetStatus())
            {
                fetches.WithLabels(s.SourceId, "success").IncTo(s.FetchAttempts - s.FetchFailures);
                fetches.WithLabels(s.SourceId, "failure").IncTo(s.FetchFailures);
                for (int c = 0; c < s.FailuresByCause.Count; c++)
                    if (s.FailuresByCause[c] > 0) fetchFailures.WithLabels(s.SourceId, KeyFetchCauses.All[c].Label()).IncTo(s.FailuresByCause[c]);
                keyCount.WithLabels(s.SourceId).Set(s.KeyCount);
                if (s.LastSuccessAt is { } at) keyAge.WithLabels(s.SourceId).Set((now - at).TotalSeconds);
            }
            var (hits, misses, size) = GitLabCiAuthMetrics.TokenCache;
            cacheHits.IncTo(hits);
            cacheMisses.IncTo(misses);
            cacheSize.Set(size);
        });

        _server = new MetricServer(host, port, "metrics/", _registry);
        _server.Start();
        Endpoint = $"http://{host}:{port}/metrics";
    }

    public string Endpoint { get; }

    public void Attach(KongPluginServer server) => _plugin = server;

    public void EventCompleted(TimeSpan duration) => _latency.Observe(duration.TotalSeconds);

    public static (string Host, int Port) Parse(string hostPort)
    {
        int colon = hostPort.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(hostPort[(colon + 1)..], out int port) || port is < 1 or > 65535)
            throw new UsageException($"--metrics-listen needs HOST:PORT (e.g. 127.0.0.1:9542), not '{hostPort}'");
        return (hostPort[..colon].Trim('[', ']'), port);
    }

    public void Dispose() => _server.Dispose();
}
