using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace LoadTest;

public static class Report
{
    /// <summary>The server's RS256 verification cost, and .NET's RSA when the server verifies another way.</summary>
    private static string RsaLine(JsonNode report)
    {
        var server = report["rsaVerifyUs"];
        var dotnet = report["rsaVerifyDotNetUs"];
        return dotnet is null ? $"{server} us" : $"{server} us as the server verifies ({dotnet} us through .NET's RSA)";
    }

    private static double? D(JsonNode? n) => n is null ? null : n.GetValue<double>();

    public static JsonObject? Scenario(JsonObject report, string name) =>
        report["scenarios"]!.AsArray().Select(s => s!.AsObject()).FirstOrDefault(s => (string?)s["Name"] == name && !(bool)s["Skipped"]!);

    /// <summary>A Markdown table (pasted into bench/README.md as is).</summary>
    public static string Table(JsonObject report)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine($"Machine: {report["machine"]}; {report["date"]}");
        var st = report["settings"]!;
        sb.AppendLine($"Load: {st["workers"]} workers x {st["concurrency"]} in flight (closed loop unless paced), {st["durationSeconds"]} s measured after {st["warmupSeconds"]} s warmup, driver {st["driver"]}; cold: {st["coldTokens"]} distinct tokens.");
        sb.AppendLine();
        sb.AppendLine("| scenario | protocol | events/s | p50 us | p90 us | p99 us | p99.9 us | server CPU us/event | x example | alloc B/event | round trips/event | PDK calls/event | peak RSS MB | client CPU us/event | errors |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var example = Scenario(report, "example");
        double? exCpu = D(example?["ServerCpuUsPerEvent"]);
        foreach (var n in report["scenarios"]!.AsArray())
        {
            var s = n!.AsObject();
            if ((bool)s["Skipped"]!)
            {
                sb.AppendLine($"| {s["Name"]} | skipped: {s["Note"] ?? s["Error"]} |||||||||||||||");
                continue;
            }
            double cpu = D(s["ServerCpuUsPerEvent"])!.Value;
            string rt = s["RoundTripsPerEvent"] is { } r ? F(D(r), "F2") : F(D(s["ClientRoundTripsPerEvent"]), "F2") + "*";
            string paced = D(s["PacedRate"]) is > 0 ? $" @{D(s["PacedRate"]):F0}/s" : "";
            sb.AppendLine(string.Join(" | ", new[]
            {
                "| " + s["Name"] + paced, (string)s["Protocol"]!, F(D(s["EventsPerSecond"]), "N0"), F(D(s["P50Us"]), "F0"), F(D(s["P90Us"]), "F0"),
                F(D(s["P99Us"]), "F0"), F(D(s["P999Us"]), "F0"), F(cpu, "F1"), exCpu is > 0 ? F(cpu / exCpu, "F2") : "",
                F(D(s["AllocBytesPerEvent"]), "F0"), rt, F(D(s["PdkCallsPerEvent"]), "F2"), F(D(s["PeakRssMb"]), "F1"),
                F(D(s["ClientCpuUsPerEvent"]), "F1"), ((long)s["Failed"]! + (long)s["Unexpected"]!).ToString(CultureInfo.InvariantCulture) + " |",
            }));
        }
        if (report["startup"] is JsonObject su)
            sb.AppendLine().AppendLine($"Startup: `-dump` {su["dumpMs"]} ms, start to listening {su["startToListeningMs"]} ms (spawning /bin/true: {su["spawnFloorMs"]} ms). RS256 verify in-process: {RsaLine(report)}.");
        else sb.AppendLine().AppendLine($"RS256 verify in-process: {RsaLine(report)}.");
        sb.AppendLine("Server CPU = utime+stime of the server process (/proc) / events; alloc and round trips from its metrics endpoint (* = counted by the client: the JS PDK has none).");
        return sb.ToString();
    }

    /// <summary>The issue's targets, each with the measurement it is judged on.</summary>
    public static string Targets(JsonObject report)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Targets:");
        void Line(bool? ok, string what, string detail) =>
            sb.AppendLine($"  [{(ok is null ? "n/a " : ok.Value ? "met " : "MISS")}] {what}: {detail}");

        double? Cpu(string n) => D(Scenario(report, n)?["ServerCpuUsPerEvent"]);
        var ex = Cpu("example");
        var warm = Cpu("warm");
        var cold = Cpu("cold");
        double rsa = D(report["rsaVerifyUs"]) ?? 0;
        Line(ex is null ? null : ex <= 15, "server CPU <= 15 us/event, example", ex is null ? "not run" : $"{ex:F1} us");
        Line(warm is null ? null : warm <= 25, "server CPU <= 25 us/event, warm", warm is null ? "not run" : $"{warm:F1} us");
        Line(cold is null || warm is null ? null : cold - warm <= rsa + 15, "signature path <= one RSA-2048 verify + 15 us",
            cold is null || warm is null ? "needs cold and warm" : $"cold - warm = {cold - warm:F1} us vs verify {rsa:F1} + 15 = {rsa + 15:F1} us (cold total {cold:F1} us)");
        var wa = D(Scenario(report, "warm")?["AllocBytesPerEvent"]);
        Line(wa is null ? null : wa < 2048, "warm access event < 2 KB allocated", wa is null ? "no metrics" : $"{wa:F0} B/event");
        var ea = D(Scenario(report, "example")?["AllocBytesPerEvent"]);
        sb.AppendLine($"  [info] zero allocations in framing and codecs: judged by bench/Bench (FramingBenchmarks, CodecBenchmarks); the example event end to end allocates {(ea is null ? "n/a" : ea.Value.ToString("F0", CultureInfo.InvariantCulture))} B, the example plugin's own strings (two header values and the value it sets)");
        var paced = Scenario(report, "warm-paced");
        if (paced is not null)
        {
            double p50 = D(paced["P50Us"])!.Value, p99 = D(paced["P99Us"])!.Value;
            Line(p99 <= 3 * p50, $"p99 within 3x p50 at moderate load (warm @{D(paced["PacedRate"]):F0}/s)", $"p50 {p50:F0} us, p99 {p99:F0} us ({p99 / p50:F2}x)");
        }
        else Line(null, "p99 within 3x p50 at moderate load", "warm-paced not run");
        var cs = Scenario(report, "cold");
        long tokens = (long?)report["settings"]?["coldTokens"] ?? 0;
        var rss = D(cs?["RssAfterMb"]);
        var peak = D(cs?["PeakRssMb"]);
        Line(rss is null ? null : tokens >= 10_000 ? rss < 50 : null, "RSS < 50 MB with 10,000 cached tokens",
            rss is null ? "cold not run" : $"{rss:F1} MB (peak {peak:F1} MB during the run) after {tokens:N0} distinct tokens verified and cached" + (tokens < 10_000 ? " (fewer than 10,000: not judged)" : ""));
        if (report["startup"] is JsonObject su)
        {
            double dump = D(su["dumpMs"])!.Value, listen = D(su["startToListeningMs"])!.Value;
            Line(dump < 20, "-dump < 20 ms", $"{dump:F1} ms");
            Line(listen < 20, "start to listening < 20 ms", $"{listen:F1} ms");
        }
        var js = Cpu("js-pdk");
        var exMp = Cpu("example-msgpack");
        if (js is null) Line(null, ">= 5x less server CPU/event than the JS PDK", "js-pdk not run");
        else
        {
            if (ex is not null) Line(js / ex >= 5, ">= 5x less server CPU/event than the JS PDK (ProtoBuf:1)", $"JS {js:F1} us vs {ex:F1} us: {js / ex:F1}x");
            if (exMp is not null) Line(js / exMp >= 5, ">= 5x less server CPU/event than the JS PDK (same protocol, MsgPack:1)", $"JS {js:F1} us vs {exMp:F1} us: {js / exMp:F1}x");
        }
        var jsP = Cpu("js-pdk-paced");
        var exP = Cpu("example-paced");
        var exMpP = Cpu("example-msgpack-paced");
        if (jsP is not null && exP is not null) Line(jsP / exP >= 5, ">= 5x less server CPU/event than the JS PDK at 2000 events/s (ProtoBuf:1)", $"JS {jsP:F1} us vs {exP:F1} us: {jsP / exP:F1}x");
        if (jsP is not null && exMpP is not null) Line(jsP / exMpP >= 5, ">= 5x less server CPU/event than the JS PDK at 2000 events/s (MsgPack:1)", $"JS {jsP:F1} us vs {exMpP:F1} us: {jsP / exMpP:F1}x");
        return sb.ToString();
    }

    private static string F(double? v, string f) => v is null ? "n/a" : v.Value.ToString(f, CultureInfo.InvariantCulture);
}
