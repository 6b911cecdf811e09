using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoadTest;

public static class Program
{
    private const string Usage = """
        LoadTest: drives the published gitlab-ci-auth binary over its Unix socket the way Kong does.

        usage: dotnet run -c Release --project bench/LoadTest -- [options]

          --binary PATH          the NativeAOT binary (default artifacts/bin/gitlab-ci-auth)
          --scenarios a,b,...    default: all (example, warm, cold, deny, example-msgpack, warm-msgpack, js-pdk,
                                 warm-paced, example-paced, example-msgpack-paced, js-pdk-paced)
          --duration S           measured seconds per scenario (default 5)
          --warmup S             unmeasured seconds first (default 1)
          --workers W            simulated nginx workers (default 2)
          --concurrency C        in-flight requests per worker (default 4)
          --cold-tokens N        distinct tokens of the cold scenario, minted before timing (default 10000;
                                 the cold run then leaves N tokens cached: its peak RSS is the 10,000-token figure)
          --rate R               pace every scenario at R events/s (default: closed loop; warm-paced: 2000)
          --driver lean|sim      lean Kong-like client (default) or the full KongSimulator
          --one-write            send a ProtoBuf frame as one write (Kong sends length and payload separately)
          --no-startup           skip the -dump and start-to-listening measurements
          --quick                short run: --duration 2 --warmup 0.5 --cold-tokens 2000
          --json FILE            write the results as JSON
          --gate FILE            regression gate: run the baseline's scenarios, compare, exit 1 on a regression
          --update-baseline      with --gate: measure and rewrite FILE's figures (thresholds are kept)
          --js-dir DIR           the JS PDK peer (default bench/js-pdk)
          --server-env K=V       extra environment for our server (repeatable), e.g. DOTNET_GCgen0size=0x400000
        """;

    public static int Main(string[] args)
    {
        var o = new RunOptions();
        var names = new List<string>();
        string? json = null, gate = null;
        bool update = false, startup = true, quick = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            double D() => double.Parse(V(), CultureInfo.InvariantCulture);
            switch (a)
            {
                case "--binary": o.Binary = V(); break;
                case "--scenarios": names.AddRange(V().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                case "--duration": o.DurationSeconds = D(); break;
                case "--warmup": o.WarmupSeconds = D(); break;
                case "--workers": o.Workers = (int)D(); break;
                case "--concurrency": o.Concurrency = (int)D(); break;
                case "--cold-tokens": o.ColdTokens = (int)D(); break;
                case "--rate": o.PacedRate = D(); break;
                case "--driver": o.Driver = V(); break;
                case "--one-write": o.SplitWrites = false; break;
                case "--no-startup": startup = false; break;
                case "--quick": quick = true; break;
                case "--json": json = V(); break;
                case "--gate": gate = V(); break;
                case "--update-baseline": update = true; break;
                case "--js-dir": o.JsDir = V(); break;
                case "--server-env":
                {
                    var kv = V().Split('=', 2);
                    o.ServerEnv[kv[0]] = kv.Length > 1 ? kv[1] : "";
                    break;
                }
                case "-h" or "--help": Console.WriteLine(Usage); return 0;
                default: Console.Error.WriteLine($"unknown option {a}\n{Usage}"); return 2;
            }
        }
        if (quick) { o.DurationSeconds = 2; o.WarmupSeconds = 0.5; o.ColdTokens = Math.Min(o.ColdTokens, 2000); }
        if (o.Driver is not ("lean" or "sim")) { Console.Error.WriteLine("--driver is lean or sim"); return 2; }

        o.Binary = Path.GetFullPath(o.Binary);
        o.JsDir = Path.GetFullPath(o.JsDir);
        if (!File.Exists(o.Binary))
        {
            Console.Error.WriteLine($"the binary {o.Binary} is missing: build it with\n  dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 -o artifacts/bin");
            return 2;
        }

        if (gate is not null) return Gate.Run(gate, update, o);

        var scenarios = names.Count == 0 ? Scenario.All.ToList() : names.Select(Scenario.Find).ToList();
        var report = RunAll(scenarios, o, startup);
        Console.WriteLine(Report.Table(report));
        Console.WriteLine(Report.Targets(report));
        if (json is not null)
        {
            File.WriteAllText(json, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Console.Error.WriteLine($"wrote {json}");
        }
        return report["scenarios"]!.AsArray().Any(s => (long)s!["Failed"]! > 0 || (long)s["Unexpected"]! > 0) ? 1 : 0;
    }

    public static JsonObject RunAll(List<Scenario> scenarios, RunOptions o, bool startup)
    {
        var machine = Machine();
        Console.Error.WriteLine($"machine: {machine}");
        Console.Error.WriteLine($"binary:  {o.Binary}");
        if (o.ServerEnv.Count > 0) Console.Error.WriteLine($"server env: {string.Join(' ', o.ServerEnv.Select(kv => kv.Key + "=" + kv.Value))}");
        Console.Error.WriteLine($"settings: {o.Workers} workers x {o.Concurrency} in flight, {o.DurationSeconds}s measured after {o.WarmupSeconds}s warmup, driver {o.Driver}, {(o.SplitWrites ? "Kong's split frame writes" : "one write per frame")}");
        var w = new Workload();
        var results = new List<ScenarioResult>();
        RequestTemplate[]? cold = null;
        foreach (var s in scenarios)
        {
            if (s.Server == ServerKind.JsPdk && !File.Exists(Path.Combine(o.JsDir, "node_modules", "kong-pdk", "bin", "kong-js-pluginserver")))
            {
                Console.Error.WriteLine($"  {s.Name}: skipped: the JS PDK is not installed (run `npm ci` in {o.JsDir})");
                results.Add(new ScenarioResult { Name = s.Name, Description = s.Description, Skipped = true, Note = "kong-pdk not installed (npm ci in bench/js-pdk)" });
                continue;
            }
            Func<RequestTemplate[]> reqs = s.Tokens switch
            {
                TokenMode.None => () => w.Example(),
                TokenMode.Warm => () => w.Warm(),
                TokenMode.Cold => () => cold ??= Mint(w, o.ColdTokens),
                _ => () => w.Deny(),
            };
            try
            {
                var r = Runner.Run(s, w, o, reqs);
                results.Add(r);
                Console.Error.WriteLine($"  {s.Name,-16} {r.EventsPerSecond,8:N0} ev/s  cpu {r.ServerCpuUsPerEvent,7:F1} us/ev  alloc {Fmt(r.AllocBytesPerEvent, "F0"),6} B/ev  rt {Fmt(r.RoundTripsPerEvent, "F2")}  p50 {r.P50Us:F0} p99 {r.P99Us:F0} us"
                    + (r.Failed + r.Unexpected > 0 ? $"  ERRORS {r.Failed}+{r.Unexpected}: {r.Error}" : ""));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"  {s.Name}: failed: {e.Message}");
                // the peer is optional: a JS PDK that cannot start is reported and skipped, not a failure of our server
                results.Add(new ScenarioResult { Name = s.Name, Description = s.Description, Skipped = true, Error = e.Message, Failed = s.Server == ServerKind.JsPdk ? 0 : 1 });
            }
        }
        var rsaVerify = w.MeasureRsaVerifyMicros();
        var root = new JsonObject
        {
            ["machine"] = machine,
            ["date"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            ["binary"] = o.Binary,
            ["settings"] = new JsonObject
            {
                ["workers"] = o.Workers, ["concurrency"] = o.Concurrency, ["durationSeconds"] = o.DurationSeconds, ["warmupSeconds"] = o.WarmupSeconds,
                ["coldTokens"] = o.ColdTokens, ["driver"] = o.Driver, ["splitWrites"] = o.SplitWrites,
                ["serverEnv"] = string.Join(' ', o.ServerEnv.Select(kv => kv.Key + "=" + kv.Value)),
            },
            ["rsaVerifyUs"] = Math.Round(rsaVerify.Server, 2),
            ["rsaVerifyDotNetUs"] = Math.Round(rsaVerify.DotNet, 2),
            ["scenarios"] = JsonSerializer.SerializeToNode(results, LoadTestJsonContext.Default.ListScenarioResult),
        };
        if (startup)
        {
            var (dump, floor) = ServerProcess.MeasureDump(o.Binary);
            root["startup"] = new JsonObject
            {
                ["dumpMs"] = Math.Round(dump, 2),
                ["spawnFloorMs"] = Math.Round(floor, 2),
                ["startToListeningMs"] = Math.Round(ServerProcess.MeasureStartToListening(o.Binary, "ProtoBuf:1"), 2),
            };
        }
        // re-parsed so that every number reads back as any numeric type
        return JsonNode.Parse(root.ToJsonString())!.AsObject();
    }

    private static RequestTemplate[] Mint(Workload w, int n)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Console.Error.Write($"  minting {n:N0} distinct RS256 tokens...");
        var r = w.Cold(n);
        Console.Error.WriteLine($" {sw.Elapsed.TotalSeconds:F1}s");
        return r;
    }

    internal static string Fmt(double? v, string f) => v is null ? "n/a" : v.Value.ToString(f, CultureInfo.InvariantCulture);

    public static string Machine()
    {
        string cpu = "?";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        }
        catch { }
        return $"{cpu}, {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<ScenarioResult>))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class LoadTestJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
