using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoadTest;

/// <summary>
/// The CI regression gate. Judges only figures that are stable on a noisy shared machine: allocations per event and
/// PDK round trips per event (deterministic), and each scenario's server CPU per event as a ratio to the `example`
/// scenario of the same run (generous bound). The baseline and thresholds live in bench/perf-baseline.json.
/// </summary>
public static class Gate
{
    private static readonly string[] DefaultScenarios = ["example", "warm", "cold", "deny", "example-msgpack", "warm-msgpack"];

    public static int Run(string path, bool update, RunOptions o)
    {
        JsonObject baseline = File.Exists(path)
            ? JsonNode.Parse(File.ReadAllText(path))!.AsObject()
            : update ? NewBaseline() : throw new FileNotFoundException($"{path} not found (create it with --update-baseline)");
        var settings = baseline["settings"]!.AsObject();
        var thresholds = baseline["thresholds"]!.AsObject();
        var names = settings["scenarios"]!.AsArray().Select(n => (string)n!).ToList();
        o.DurationSeconds = (double)settings["durationSeconds"]!;
        o.WarmupSeconds = (double)settings["warmupSeconds"]!;
        o.Workers = (int)settings["workers"]!;
        o.Concurrency = (int)settings["concurrency"]!;
        o.ColdTokens = (int)settings["coldTokens"]!;
        o.Driver = "lean";
        o.Metrics = true;
        if (!names.Contains("example")) names.Insert(0, "example");

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var report = Program.RunAll(names.Select(Scenario.Find).ToList(), o, startup: false);
        Console.WriteLine(Report.Table(report));

        var example = Report.Scenario(report, "example");
        double exCpu = example is null ? double.NaN : (double)example["ServerCpuUsPerEvent"]!;
        var failures = new List<string>();
        var notes = new List<string>();
        var measured = new JsonObject();
        foreach (var name in names)
        {
            var s = Report.Scenario(report, name);
            if (s is null) { failures.Add($"{name}: did not run"); continue; }
            long errors = (long)s["Failed"]! + (long)s["Unexpected"]!;
            if (errors > 0) failures.Add($"{name}: {errors} failed or wrong answers ({s["Error"]})");
            double? alloc = s["AllocBytesPerEvent"]?.GetValue<double>();
            double? rt = s["RoundTripsPerEvent"]?.GetValue<double>();
            double cpu = (double)s["ServerCpuUsPerEvent"]!;
            double ratio = cpu / exCpu;
            if (alloc is null || rt is null) failures.Add($"{name}: the server reported no metrics (--metrics-listen): allocations and round trips cannot be checked");
            measured[name] = new JsonObject
            {
                ["allocBytesPerEvent"] = alloc is null ? null : Math.Round(alloc.Value, 1),
                ["roundTripsPerEvent"] = rt is null ? null : Math.Round(rt.Value, 3),
                ["cpuRatioToExample"] = Math.Round(ratio, 3),
                ["cpuUsPerEvent"] = Math.Round(cpu, 2),
            };
            if (update) continue;
            var b = baseline["scenarios"]?[name]?.AsObject();
            if (b is null) { notes.Add($"{name}: not in the baseline (run --update-baseline)"); continue; }

            if (alloc is not null && b["allocBytesPerEvent"] is { } ba)
            {
                double baseAlloc = (double)ba;
                double limit = baseAlloc + Math.Max((double)thresholds["allocSlackBytes"]!, (double)thresholds["allocSlackRelative"]! * baseAlloc);
                if (alloc > limit) failures.Add($"{name}: allocations {alloc:F0} B/event > {limit:F0} (baseline {baseAlloc:F0})");
                else if (alloc < baseAlloc - Math.Max((double)thresholds["allocSlackBytes"]!, (double)thresholds["allocSlackRelative"]! * baseAlloc))
                    notes.Add($"{name}: allocations improved to {alloc:F0} B/event (baseline {baseAlloc:F0}): update the baseline");
            }
            if (rt is not null && b["roundTripsPerEvent"] is { } brt)
            {
                double baseRt = (double)brt, slack = (double)thresholds["roundTripSlack"]!;
                if (rt > baseRt + slack) failures.Add($"{name}: round trips {rt:F3}/event > baseline {baseRt:F3} + {slack}");
                else if (rt < baseRt - slack) notes.Add($"{name}: round trips improved to {rt:F3}/event (baseline {baseRt:F3}): update the baseline");
            }
            if (name != "example" && b["cpuRatioToExample"] is { } br)
            {
                double baseRatio = (double)br;
                // a scenario may carry its own factor (e.g. deny: its cost is dominated by connection churn, which varies with load)
                double factor = b["cpuRatioFactor"] is { } f ? (double)f : (double)thresholds["cpuRatioFactor"]!;
                double limit = baseRatio * factor + (double)thresholds["cpuRatioSlack"]!;
                if (ratio > limit) failures.Add($"{name}: CPU/event {ratio:F2}x example > {limit:F2}x (baseline {baseRatio:F2}x)");
            }
        }

        if (update)
        {
            // keep per-scenario overrides (cpuRatioFactor) across updates
            foreach (var (name, node) in measured)
                if (baseline["scenarios"]?[name]?["cpuRatioFactor"] is { } keep) node!["cpuRatioFactor"] = keep.DeepClone();
            baseline["scenarios"] = measured;
            baseline["machine"] = report["machine"]!.DeepClone();
            baseline["updated"] = report["date"]!.DeepClone();
            baseline["exampleCpuUsPerEvent"] = Math.Round(exCpu, 2);
            if (failures.Count > 0)
            {
                Console.WriteLine("not updating the baseline:");
                foreach (var f in failures) Console.WriteLine("  " + f);
                return 1;
            }
            File.WriteAllText(path, baseline.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            Console.WriteLine($"baseline {path} updated ({sw.Elapsed.TotalSeconds:F0} s)");
            return 0;
        }

        foreach (var n in notes) Console.WriteLine("note: " + n);
        if (failures.Count > 0)
        {
            Console.WriteLine($"perf gate FAILED ({failures.Count} checks, {sw.Elapsed.TotalSeconds:F0} s):");
            foreach (var f in failures) Console.WriteLine("  FAIL " + f);
            return 1;
        }
        Console.WriteLine($"perf gate passed: {names.Count} scenarios, allocations, round trips and CPU ratios within the baseline ({sw.Elapsed.TotalSeconds:F0} s)");
        return 0;
    }

    private static JsonObject NewBaseline() => new()
    {
        ["comment"] = "Perf gate baseline (bench/perf-gate.sh). Checked: allocations/event <= base + max(allocSlackBytes, allocSlackRelative*base); " +
                      "round trips/event <= base + roundTripSlack; CPU/event as a ratio to the example scenario of the same run <= base*cpuRatioFactor + cpuRatioSlack. " +
                      "Update after an intended change: bash bench/perf-gate.sh --update-baseline",
        ["settings"] = new JsonObject
        {
            ["scenarios"] = new JsonArray(DefaultScenarios.Select(s => (JsonNode)s).ToArray()),
            ["durationSeconds"] = 2.0, ["warmupSeconds"] = 0.5, ["workers"] = 2, ["concurrency"] = 4, ["coldTokens"] = 2000,
        },
        ["thresholds"] = new JsonObject
        {
            ["allocSlackBytes"] = 64.0, ["allocSlackRelative"] = 0.10, ["roundTripSlack"] = 0.02, ["cpuRatioFactor"] = 1.5, ["cpuRatioSlack"] = 0.25,
        },
        ["scenarios"] = new JsonObject(),
    };
}
