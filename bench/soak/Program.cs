using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace Soak;

/// <summary>
/// Soak run of the published gitlab-ci-auth binary: a steady request rate through the Kong simulator with a mix of
/// valid (cached), new, invalid and policy-denied tokens, periodic config changes (Kong rebuilds: every instance
/// restarts) and key rotations at the fake GitLab; every answer is checked; RSS, fds, threads (from /proc) and
/// latency percentiles are sampled every interval and printed as a table.
/// </summary>
public static class Program
{
    private const string Usage = """
        Soak: a steady-rate, mixed-traffic run against the published gitlab-ci-auth binary (bench/soak/README.md).

        usage: dotnet run -c Release --project bench/soak -- [options]

          --duration S        total seconds (default 600: the documented 10-minute run)
          --rate R            requests per second, paced (default 400)
          --interval S        sample period (default 10)
          --protocol P        ProtoBuf:1 (default) or MsgPack:1
          --workers W         simulated nginx workers (default 2)
          --concurrency C     request loops (default 16)
          --config-every S    change the route's config (a Kong rebuild) every S seconds (default 30; 0: never)
          --rotate-every S    rotate GitLab's signing key every S seconds (default 120; 0: never)
          --binary PATH       the binary (default $GITLAB_CI_AUTH_BIN, else artifacts/bin/gitlab-ci-auth)
          --seed N            the traffic mix's seed (default 1)
          --json FILE         also write the samples as JSON

        exit code: 0 when every answer was right and RSS/fds stayed flat, 1 otherwise, 2 on bad usage.
        """;

    public static async Task<int> Main(string[] args)
    {
        var o = new Options();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
                double D() => double.Parse(V(), CultureInfo.InvariantCulture);
                switch (a)
                {
                    case "--duration": o.Duration = TimeSpan.FromSeconds(D()); break;
                    case "--rate": o.Rate = D(); break;
                    case "--interval": o.Interval = TimeSpan.FromSeconds(D()); break;
                    case "--protocol": o.Protocol = V() switch { "ProtoBuf:1" => KongProtocol.ProtoBuf, "MsgPack:1" => KongProtocol.MsgPack, var p => throw new ArgumentException("unknown protocol " + p) }; break;
                    case "--workers": o.Workers = (int)D(); break;
                    case "--concurrency": o.Concurrency = (int)D(); break;
                    case "--config-every": o.ConfigEvery = TimeSpan.FromSeconds(D()); break;
                    case "--rotate-every": o.RotateEvery = TimeSpan.FromSeconds(D()); break;
                    case "--binary": o.Binary = V(); break;
                    case "--seed": o.Seed = (int)D(); break;
                    case "--json": o.Json = V(); break;
                    case "-h" or "--help": Console.WriteLine(Usage); return 0;
                    default: throw new ArgumentException("unknown option " + a);
                }
            }
            if (o.Rate <= 0 || o.Concurrency < 1 || o.Workers < 1 || o.Interval <= TimeSpan.Zero) throw new ArgumentException("rate, concurrency, workers and interval must be positive");
            // the plugin refetches for an unknown kid at most once per jwks_refetch_cooldown_seconds (30 s): a rotation sooner
            // than that after the previous one is refused (unknown_key) until the cooldown ends, by design
            if (o.RotateEvery > TimeSpan.Zero && o.RotateEvery < TimeSpan.FromSeconds(45)) throw new ArgumentException("--rotate-every must be 0 or at least 45 s (the refetch cooldown is 30 s)");
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine("soak: " + e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        o.Binary ??= Environment.GetEnvironmentVariable("GITLAB_CI_AUTH_BIN") ?? Path.Combine(RepoRoot(), "artifacts", "bin", "gitlab-ci-auth");
        if (!File.Exists(o.Binary))
        {
            Console.Error.WriteLine($"soak: no binary at {o.Binary} (dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 -o artifacts/bin)");
            return 2;
        }
        return await new SoakRun(o).RunAsync();
    }

    private static string RepoRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Plugin.sln"))) return d.FullName;
        return Environment.CurrentDirectory;
    }
}

public sealed class Options
{
    public TimeSpan Duration = TimeSpan.FromMinutes(10);
    public double Rate = 400;
    public TimeSpan Interval = TimeSpan.FromSeconds(10);
    public KongProtocol Protocol = KongProtocol.ProtoBuf;
    public int Workers = 2;
    public int Concurrency = 16;
    public TimeSpan ConfigEvery = TimeSpan.FromSeconds(30);
    public TimeSpan RotateEvery = TimeSpan.FromSeconds(120);
    public string? Binary;
    public int Seed = 1;
    public string? Json;
}

/// <summary>What one interval measured.</summary>
public sealed record Sample(double T, long Requests, double RatePerS, double P50, double P90, double P99, double Max,
    long Wrong, long Allowed, long Refused, double RssMiB, int Fds, long Threads, string Notes);

internal enum Kind { Cached, Fresh, Expired, BadSignature, Missing, WrongAudience, PolicyDenied }

internal sealed class SoakRun(Options o)
{
    private const string Audience = TokenMinter.DefaultAudience;
    private readonly object _lock = new();
    private List<double> _latencies = new(8192);
    private long _requests, _wrong, _allowed, _refused, _totalRequests, _totalWrong;
    private readonly List<string> _wrongSamples = new();
    private volatile string[] _pool = [];
    private volatile int _epoch;
    private string _notes = "";

    public async Task<int> RunAsync()
    {
        using var gitlab = FakeGitLab.Start();
        var minter = new TokenMinter(gitlab, Audience);
        var other = new TokenMinter(gitlab, "https://someone-else.example");
        var dir = Path.Combine("/tmp", "soak-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var socket = Path.Combine(dir, "gitlab-ci-auth.socket");
        string proto = o.Protocol == KongProtocol.MsgPack ? "MsgPack:1" : "ProtoBuf:1";
        var psi = new ProcessStartInfo(o.Binary!) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "--socket", socket, "--protocol", proto, "--log-level", "warn" }) psi.ArgumentList.Add(a);
        using var server = Process.Start(psi)!;
        var stderrLines = 0L;
        var lastStderr = new Queue<string>();
        _ = Task.Run(async () =>
        {
            string? line;
            while ((line = await server.StandardError.ReadLineAsync()) is not null)
            {
                Interlocked.Increment(ref stderrLines);
                lock (lastStderr) { lastStderr.Enqueue(line); if (lastStderr.Count > 20) lastStderr.Dequeue(); }
            }
        });
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(socket) && !server.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20);
            if (!File.Exists(socket)) { Console.Error.WriteLine("soak: the server did not start"); return 1; }

            await using var kong = new KongSimulator(socket, o.Protocol, "gitlab-ci-auth", o.Workers, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(30) });
            int generation = 0;
            string Config() => new JsonObject
            {
                ["issuer"] = gitlab.Issuer,
                ["audiences"] = new JsonArray(Audience),
                ["allow_insecure_http"] = true,
                ["clock_skew_seconds"] = 60 + generation % 2,
                ["rules"] = JsonNode.Parse("""[{"name":"platform","claims":{"namespace_path":["acme/platform","acme/platform/**"]}}]"""),
            }.ToJsonString();
            var entity = kong.AddPlugin(Config());
            _pool = Enumerable.Range(0, 200).Select(_ => minter.Mint()).ToArray();

            Console.WriteLine($"soak: {o.Binary} ({proto}), {o.Duration.TotalSeconds:F0} s at {o.Rate:F0} req/s, {o.Concurrency} loops on {o.Workers} workers, " +
                              $"config change every {o.ConfigEvery.TotalSeconds:F0} s, key rotation every {o.RotateEvery.TotalSeconds:F0} s, {Environment.ProcessorCount} cores");
            Console.WriteLine("mix: 55% valid cached, 15% valid new, 10% expired, 5% bad signature, 5% missing, 5% wrong audience, 5% denied by policy");
            Console.WriteLine();
            Console.WriteLine("   t/s  requests   req/s   p50 ms   p90 ms   p99 ms   max ms  wrong  rss MiB  fds  thr  notes");

            var started = Stopwatch.StartNew();
            var end = o.Duration;
            using var stop = new CancellationTokenSource();
            double perLoop = o.Rate / o.Concurrency;
            var loops = Enumerable.Range(0, o.Concurrency).Select(n => Task.Run(async () =>
            {
                var rng = new Random(o.Seed * 1000 + n);
                long k = 0;
                var offset = TimeSpan.FromSeconds(n / o.Rate);
                while (!stop.IsCancellationRequested)
                {
                    var due = offset + TimeSpan.FromSeconds(k++ / perLoop);
                    var wait = due - started.Elapsed;
                    if (wait > TimeSpan.Zero) await Task.Delay(wait);
                    if (stop.IsCancellationRequested) break;
                    await OneAsync(kong, entity, minter, other, rng, n % o.Workers);
                }
            })).ToArray();

            var samples = new List<Sample>();
            var nextConfig = o.ConfigEvery;
            var nextRotate = o.RotateEvery;
            var nextSample = o.Interval;
            while (started.Elapsed < end && !server.HasExited)
            {
                await Task.Delay(100);
                var t = started.Elapsed;
                if (o.ConfigEvery > TimeSpan.Zero && t >= nextConfig)
                {
                    generation++;
                    kong.UpdateConfig(entity, Config());
                    nextConfig += o.ConfigEvery;
                    lock (_lock) _notes += "config ";
                }
                if (o.RotateEvery > TimeSpan.Zero && t >= nextRotate)
                {
                    // the epoch is odd while the pool still holds tokens of the previous key
                    Interlocked.Increment(ref _epoch);
                    gitlab.Rotate();
                    _pool = Enumerable.Range(0, 200).Select(_ => minter.Mint()).ToArray();
                    Interlocked.Increment(ref _epoch);
                    nextRotate += o.RotateEvery;
                    lock (_lock) _notes += "rotate ";
                }
                if (t >= nextSample)
                {
                    samples.Add(TakeSample(t, o.Interval, server.Id));
                    Print(samples[^1]);
                    nextSample += o.Interval;
                }
            }
            stop.Cancel();
            await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(60));
            if (server.HasExited)
            {
                Console.WriteLine($"\nsoak: the server EXITED (code {server.ExitCode}); last stderr:");
                lock (lastStderr) foreach (var l in lastStderr) Console.WriteLine("  " + l);
                return 1;
            }
            return Summarize(samples, Interlocked.Read(ref stderrLines), lastStderr);
        }
        finally
        {
            if (!server.HasExited) { server.Kill(); server.WaitForExit(10_000); }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private async Task OneAsync(KongSimulator kong, PluginEntity entity, TokenMinter minter, TokenMinter other, Random rng, int worker)
    {
        int roll = rng.Next(100);
        var kind = roll switch
        {
            < 55 => Kind.Cached,
            < 70 => Kind.Fresh,
            < 80 => Kind.Expired,
            < 85 => Kind.BadSignature,
            < 90 => Kind.Missing,
            < 95 => Kind.WrongAudience,
            _ => Kind.PolicyDenied,
        };
        int epoch = _epoch;
        var pool = _pool;
        string? token = kind switch
        {
            Kind.Cached => pool[rng.Next(pool.Length)],
            Kind.Fresh => minter.Mint(),
            Kind.Expired => minter.Mint(b => b.IssuedAt(DateTimeOffset.UtcNow.AddHours(-3), TimeSpan.FromHours(1))),
            Kind.BadSignature => Tamper(pool[rng.Next(pool.Length)]),
            Kind.Missing => null,
            Kind.WrongAudience => other.Mint(),
            _ => minter.Mint(b => b.Set("namespace_path", "other/team")),
        };
        var request = new SimRequest { Method = "POST", Path = "/deploy", Host = "api.test" };
        request.Headers["host"] = "api.test";
        if (token is not null) request.Headers["authorization"] = "Bearer " + token;
        var sw = Stopwatch.StartNew();
        SimResult r;
        try
        {
            r = await kong.Worker(worker).RunAsync(entity, "access", request);
        }
        catch (Exception e)
        {
            Wrong($"{kind}: {e.GetType().Name}: {e.Message}");
            return;
        }
        double ms = sw.Elapsed.TotalMilliseconds;
        string got = Outcome(r);
        string expected = kind switch
        {
            Kind.Cached or Kind.Fresh => "allowed",
            Kind.Expired => "401 token_expired",
            Kind.BadSignature => "401 signature_invalid",
            Kind.Missing => "401 token_missing",
            Kind.WrongAudience => "401 audience_mismatch",
            _ => "403 no_rule_matched",
        };
        // a token of the previous key, in flight across a rotation: allowed until the plugin refetches, then unknown_key
        bool stale = epoch % 2 == 1 || epoch != _epoch;
        bool ok = got == expected || (stale && kind is Kind.Cached or Kind.BadSignature && got == "401 unknown_key");
        lock (_lock)
        {
            _latencies.Add(ms);
            _requests++;
            if (!ok) { _wrong++; if (_wrongSamples.Count < 20) _wrongSamples.Add($"{kind}: expected {expected}, got {got}: {r}"); }
            else if (got == "allowed") _allowed++;
            else _refused++;
        }
    }

    private void Wrong(string what)
    {
        lock (_lock)
        {
            _requests++;
            _wrong++;
            if (_wrongSamples.Count < 20) _wrongSamples.Add(what);
        }
    }

    private static string Tamper(string token)
    {
        var c = token.ToCharArray();
        int at = token.LastIndexOf('.') + 10;
        c[at] = c[at] == 'A' ? 'B' : 'A';
        return new string(c);
    }

    private static string Outcome(SimResult r)
    {
        if (r.Outcome == SimOutcome.Completed && r.Status == 200 && r.Exit is null) return "allowed";
        if (r.Exit is null) return $"failed {r.Status} {r.Error}";
        try
        {
            using var body = JsonDocument.Parse(r.Exit.Body);
            return $"{r.Exit.Status} {body.RootElement.GetProperty("code").GetString()}";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException)
        {
            return $"{r.Exit.Status} {r.Exit.BodyText}";
        }
    }

    private Sample TakeSample(TimeSpan t, TimeSpan interval, int pid)
    {
        List<double> lat;
        long requests, wrong, allowed, refused;
        string notes;
        lock (_lock)
        {
            lat = _latencies;
            _latencies = new List<double>(Math.Max(1024, lat.Count));
            (requests, wrong, allowed, refused) = (_requests, _wrong, _allowed, _refused);
            _requests = _wrong = _allowed = _refused = 0;
            notes = _notes.Trim();
            _notes = "";
        }
        _totalRequests += requests;
        _totalWrong += wrong;
        lat.Sort();
        double P(double q) => lat.Count == 0 ? 0 : lat[Math.Min(lat.Count - 1, (int)Math.Ceiling(q * lat.Count) - 1)];
        var (rss, threads) = Status(pid);
        int fds = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;
        return new Sample(Math.Round(t.TotalSeconds), requests, requests / interval.TotalSeconds, P(0.5), P(0.9), P(0.99), lat.Count == 0 ? 0 : lat[^1],
            wrong, allowed, refused, rss / 1024.0, fds, threads, notes);
    }

    private static (long RssKiB, long Threads) Status(int pid)
    {
        long rss = 0, threads = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            if (line.StartsWith("Threads:", StringComparison.Ordinal)) threads = long.Parse(line.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return (rss, threads);
    }

    private static void Print(Sample s) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{s.T,6:F0} {s.Requests,9} {s.RatePerS,7:F0} {s.P50,8:F2} {s.P90,8:F2} {s.P99,8:F2} {s.Max,8:F1} {s.Wrong,6} {s.RssMiB,8:F1} {s.Fds,4} {s.Threads,4}  {s.Notes}"));

    private int Summarize(List<Sample> samples, long stderrLines, Queue<string> lastStderr)
    {
        Console.WriteLine();
        if (samples.Count < 3)
        {
            Console.WriteLine("soak: too short for a verdict (fewer than 3 samples)");
            return _totalWrong == 0 ? 0 : 1;
        }
        // flatness: skip the first sample (warm-up); the last third must not climb above the rest
        var steady = samples.Skip(1).ToList();
        int split = Math.Max(1, steady.Count * 2 / 3);
        double earlyRss = steady.Take(split).Max(s => s.RssMiB), lateRss = steady.Skip(split).DefaultIfEmpty(steady[^1]).Average(s => s.RssMiB);
        int earlyFds = steady.Take(split).Max(s => s.Fds), lateFds = steady.Skip(split).DefaultIfEmpty(steady[^1]).Max(s => s.Fds);
        double earlyP99 = steady.Take(split).Average(s => s.P99), lateP99 = steady.Skip(split).DefaultIfEmpty(steady[^1]).Average(s => s.P99);
        bool rssFlat = lateRss <= earlyRss * 1.10 + 16;
        bool fdsFlat = lateFds <= earlyFds + 8;
        var all = samples.Sum(s => s.Requests);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"total: {all} requests, {_totalWrong} wrong answers; RSS {samples.Min(s => s.RssMiB):F1}..{samples.Max(s => s.RssMiB):F1} MiB " +
            $"(steady max {earlyRss:F1} -> last third avg {lateRss:F1}: {(rssFlat ? "flat" : "GROWING")}); fds {samples.Min(s => s.Fds)}..{samples.Max(s => s.Fds)} " +
            $"({(fdsFlat ? "flat" : "GROWING")}); p99 {earlyP99:F2} -> {lateP99:F2} ms; server stderr: {stderrLines} lines"));
        foreach (var w in _wrongSamples) Console.WriteLine("  wrong: " + w);
        if (stderrLines > 0) lock (lastStderr) foreach (var l in lastStderr.TakeLast(5)) Console.WriteLine("  stderr: " + l);
        if (o.Json is not null)
            File.WriteAllText(o.Json, JsonSerializer.Serialize(samples.Select(s => new Dictionary<string, object>
            {
                ["t"] = s.T, ["requests"] = s.Requests, ["rate"] = s.RatePerS, ["p50_ms"] = s.P50, ["p90_ms"] = s.P90, ["p99_ms"] = s.P99,
                ["max_ms"] = s.Max, ["wrong"] = s.Wrong, ["rss_mib"] = s.RssMiB, ["fds"] = s.Fds, ["threads"] = s.Threads, ["notes"] = s.Notes,
            }).ToList(), new JsonSerializerOptions { WriteIndented = true }));
        return _totalWrong == 0 && rssFlat && fdsFlat ? 0 : 1;
    }
}
