using System.Diagnostics;
using Kong.PluginServer.Testing;

namespace LoadTest;

public sealed class RunOptions
{
    public string Binary = "artifacts/bin/gitlab-ci-auth";
    public string JsDir = "bench/js-pdk";
    public double DurationSeconds = 5;
    public double WarmupSeconds = 1;
    public int Workers = 2;
    public int Concurrency = 4;
    public int ColdTokens = 10_000;
    public bool SplitWrites = true;
    public string Driver = "lean";
    public bool Metrics = true;
    public double? PacedRate;
    /// <summary>Extra environment of our server process (e.g. DOTNET_GCgen0size=0x400000 to try a GC setting).</summary>
    public Dictionary<string, string> ServerEnv = new();
}

/// <summary>The figures of one scenario run (also the JSON shape).</summary>
public sealed class ScenarioResult
{
    public string Name { get; set; } = "";
    public string Description { get; set; } = "";
    public string Server { get; set; } = "";
    public string Protocol { get; set; } = "";
    public string Plugin { get; set; } = "";
    public string Driver { get; set; } = "";
    public int Workers { get; set; }
    public int Concurrency { get; set; }
    public double PacedRate { get; set; }
    public double Seconds { get; set; }
    public long Events { get; set; }
    public double EventsPerSecond { get; set; }
    public double P50Us { get; set; }
    public double P90Us { get; set; }
    public double P99Us { get; set; }
    public double P999Us { get; set; }
    public double MaxUs { get; set; }
    public double ServerCpuUsPerEvent { get; set; }
    public double ClientCpuUsPerEvent { get; set; }
    public double PeakRssMb { get; set; }
    /// <summary>VmRSS once the load has stopped and the server settled for a second (what stays resident).</summary>
    public double RssAfterMb { get; set; }
    public double? AllocBytesPerEvent { get; set; }
    public double? RoundTripsPerEvent { get; set; }
    public double ClientRoundTripsPerEvent { get; set; }
    public double PdkCallsPerEvent { get; set; }
    public double ConnectsPerEvent { get; set; }
    public long Failed { get; set; }
    public long Unexpected { get; set; }
    public string? Error { get; set; }
    public string? Note { get; set; }
    public int ServerThreads { get; set; }
    public bool Skipped { get; set; }
}

public static class Runner
{
    /// <summary>Progress shown on stderr while a scenario runs (overwritten in place on a terminal).</summary>
    private sealed class Progress : IDisposable
    {
        private readonly Timer _timer;
        private readonly Func<long> _events;
        private readonly string _name;
        private readonly Stopwatch _sw = Stopwatch.StartNew();
        private readonly bool _tty = !Console.IsErrorRedirected;
        private long _last;
        private double _lastT;
        private int _ticks;

        public Progress(string name, Func<long> events)
        {
            _name = name;
            _events = events;
            _timer = new Timer(_ => Tick(), null, 250, 250);
        }

        public string Phase { get; set; } = "warmup";

        private void Tick()
        {
            long e = _events();
            double t = _sw.Elapsed.TotalSeconds;
            double rate = (e - _last) / Math.Max(1e-3, t - _lastT);
            _last = e;
            _lastT = t;
            _ticks++;
            var line = $"  {_name,-16} {Phase,-8} {t,5:F1}s {e,9:N0} events {rate,9:N0}/s";
            if (_tty) Console.Error.Write("\r" + line.PadRight(78));
            else if (_ticks % 8 == 0) Console.Error.WriteLine(line);
        }

        public void Dispose()
        {
            _timer.Dispose();
            if (_tty) Console.Error.Write("\r" + new string(' ', 79) + "\r");
        }
    }

    public static ScenarioResult Run(Scenario s, Workload w, RunOptions o, Func<RequestTemplate[]> requests)
    {
        var res = new ScenarioResult
        {
            Name = s.Name, Description = s.Description, Server = s.Server == ServerKind.Ours ? "gitlab-ci-auth (NativeAOT)" : "kong-pdk (node " + NodeVersion() + ")",
            Protocol = s.ProtocolName, Plugin = s.Plugin, Driver = o.Driver, Workers = o.Workers, Concurrency = o.Concurrency,
            PacedRate = o.PacedRate ?? s.PacedRate,
        };
        RequestTemplate[] reqs = requests();
        using var server = s.Server == ServerKind.Ours ? ServerProcess.StartOurs(o.Binary, s, o.Metrics, o.ServerEnv) : ServerProcess.StartJsPdk(o.JsDir);
        if (server.StartupNote.Length > 0) res.Note = server.StartupNote;

        var sim = new KongSimulator(server.SocketPath, s.Protocol == Proto.ProtoBuf ? KongProtocol.ProtoBuf : KongProtocol.MsgPack, s.Plugin, o.Workers);
        var entity = sim.AddPlugin(s.Plugin == "example" ? Workload.ExampleConfig : w.GitLabConfig(), routeId: "7c1d3e5f-2a4b-4c6d-8e0f-1a2b3c4d5e6f");
        var configJson = entity.KongConfigJson;

        var workers = Enumerable.Range(0, o.Workers)
            .Select(_ => new LeanWorker(server.SocketPath, s.Protocol, s.Plugin, configJson, o.SplitWrites)).ToArray();
        try
        {
            if (o.Driver == "lean") foreach (var lw in workers) lw.StartInstance();
            bool countMode = s.Tokens == TokenMode.Cold;
            int slots = o.Workers * o.Concurrency;
            double paced = o.PacedRate ?? s.PacedRate;

            // ---- warmup ----
            long next = 0;
            int warmupCount = countMode ? Math.Min(reqs.Length / 10, 1000) : 0;
            long liveEvents = 0;
            using (var progress = new Progress(s.Name, () => Interlocked.Read(ref liveEvents)))
            {
                Func<long, RequestTemplate?> pickWarm = countMode
                    ? i => i < warmupCount ? reqs[i] : null
                    : i => reqs[i % reqs.Length];
                RunPhase(o, workers, sim, entity, pickWarm, countMode ? TimeSpan.MaxValue : TimeSpan.FromSeconds(o.WarmupSeconds), paced, slots, () => Interlocked.Increment(ref next) - 1, ref liveEvents);

                // ---- measure ----
                progress.Phase = "measure";
                Thread.Sleep(50);
                var before = server.Sample();
                var clientCpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                long connects0 = workers.Sum(x => x.Connects);
                long t0 = Stopwatch.GetTimestamp();
                if (countMode) next = warmupCount;
                Func<long, RequestTemplate?> pick = countMode
                    ? i => i < reqs.Length ? reqs[i] : null
                    : i => reqs[i % reqs.Length];
                var stats = RunPhase(o, workers, sim, entity, pick, countMode ? TimeSpan.MaxValue : TimeSpan.FromSeconds(o.DurationSeconds), paced, slots,
                    () => Interlocked.Increment(ref next) - 1, ref liveEvents);
                double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - clientCpu0).TotalSeconds;
                var after = server.Sample(cpuFirst: true);
                long connects = workers.Sum(x => x.Connects) - connects0;

                long events = stats.Events;
                res.Seconds = seconds;
                res.Events = events;
                double serverEvents = after.HasMetrics && before.HasMetrics ? after.Events - before.Events : events;
                res.EventsPerSecond = events / seconds;
                res.ServerCpuUsPerEvent = (after.CpuSeconds - before.CpuSeconds) * 1e6 / Math.Max(1, serverEvents);
                res.ClientCpuUsPerEvent = clientCpu * 1e6 / Math.Max(1, events);
                if (after.HasMetrics && before.HasMetrics && serverEvents > 0)
                {
                    res.AllocBytesPerEvent = (after.AllocatedBytes - before.AllocatedBytes - ScrapeOverhead(server)) / serverEvents;
                    res.RoundTripsPerEvent = (after.RoundTrips - before.RoundTrips) / serverEvents;
                }
                res.ClientRoundTripsPerEvent = stats.RoundTrips / (double)Math.Max(1, events);
                res.PdkCallsPerEvent = stats.PdkCalls / (double)Math.Max(1, events);
                res.ConnectsPerEvent = connects / (double)Math.Max(1, events);
                res.Failed = stats.Failed;
                res.Unexpected = stats.Unexpected;
                if (stats.LastError is not null) res.Error = stats.LastError;
                res.PeakRssMb = server.PeakRssBytes() / 1048576.0;
                Thread.Sleep(1000);
                res.RssAfterMb = server.RssBytes() / 1048576.0;
                if (Environment.GetEnvironmentVariable("LOADTEST_SMAPS") == "1")
                    Console.Error.WriteLine(File.ReadAllText($"/proc/{server.Pid}/smaps_rollup") + string.Join('\n',
                        File.ReadLines($"/proc/{server.Pid}/status").Where(l => l.StartsWith("Rss") || l.StartsWith("Threads"))));
                res.ServerThreads = server.Threads();
                var lat = stats.LatencyTicks;
                lat.Sort();
                double Us(double q) => lat.Count == 0 ? 0 : lat[Math.Min(lat.Count - 1, (int)Math.Ceiling(q * lat.Count) - 1 < 0 ? 0 : (int)Math.Ceiling(q * lat.Count) - 1)] * 1e6 / Stopwatch.Frequency;
                res.P50Us = Us(0.50);
                res.P90Us = Us(0.90);
                res.P99Us = Us(0.99);
                res.P999Us = Us(0.999);
                res.MaxUs = lat.Count == 0 ? 0 : lat[^1] * 1e6 / Stopwatch.Frequency;
            }
        }
        finally
        {
            foreach (var lw in workers) lw.Dispose();
            sim.Dispose();
        }
        return res;
    }

    private static readonly Dictionary<int, double> s_scrapeOverhead = new();

    /// <summary>Bytes the server allocates to answer one scrape (subtracted once from a before/after pair).</summary>
    private static double ScrapeOverhead(ServerProcess server)
    {
        lock (s_scrapeOverhead)
        {
            if (s_scrapeOverhead.TryGetValue(server.Pid, out var v)) return v;
            var a = server.Sample();
            var b = server.Sample();
            var c = server.Sample();
            v = Math.Max(0, Math.Min(b.AllocatedBytes - a.AllocatedBytes, c.AllocatedBytes - b.AllocatedBytes));
            s_scrapeOverhead[server.Pid] = v;
            return v;
        }
    }

    private static SlotStats RunPhase(RunOptions o, LeanWorker[] workers, KongSimulator sim, PluginEntity entity,
        Func<long, RequestTemplate?> pick, TimeSpan duration, double pacedRate, int slots, Func<long> nextIndex, ref long liveEvents)
    {
        var all = new SlotStats[slots];
        long deadline = duration == TimeSpan.MaxValue ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        double intervalTicks = pacedRate > 0 ? Stopwatch.Frequency * slots / pacedRate : 0;
        var threads = new Thread[slots];
        var liveBox = new StrongBox(0);
        for (int i = 0; i < slots; i++)
        {
            int slot = i;
            var st = all[i] = new SlotStats();
            var worker = workers[slot % workers.Length];
            var simWorker = sim.Worker(slot % workers.Length);
            threads[i] = new Thread(() =>
            {
                var scratch = new byte[64 * 1024];
                long start = Stopwatch.GetTimestamp() + (long)(intervalTicks * slot / Math.Max(1, slots));
                long k = 0;
                while (Stopwatch.GetTimestamp() < deadline)
                {
                    if (intervalTicks > 0)
                    {
                        long due = start + (long)(k++ * intervalTicks);
                        long wait = due - Stopwatch.GetTimestamp();
                        if (wait > 0) Thread.Sleep(TimeSpan.FromTicks(wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
                        if (Stopwatch.GetTimestamp() >= deadline) break;
                    }
                    var r = pick(nextIndex());
                    if (r is null) break;
                    long t = Stopwatch.GetTimestamp();
                    if (o.Driver == "lean") worker.RunEvent(r, st, scratch);
                    else RunSim(simWorker, entity, r, st);
                    st.LatencyTicks.Add(Stopwatch.GetTimestamp() - t);
                    Interlocked.Increment(ref liveBox.Value);
                }
            }, 256 * 1024) { IsBackground = true, Name = $"slot-{slot}" };
        }
        long baseLive = Interlocked.Read(ref liveEvents);
        foreach (var t in threads) t.Start();
        // keep the shared progress counter moving
        while (threads.Any(t => t.IsAlive))
        {
            Interlocked.Exchange(ref liveEvents, baseLive + Interlocked.Read(ref liveBox.Value));
            threads.FirstOrDefault(t => t.IsAlive)?.Join(100);
        }
        Interlocked.Exchange(ref liveEvents, baseLive + Interlocked.Read(ref liveBox.Value));
        var total = new SlotStats();
        foreach (var st in all) total.Add(st);
        return total;
    }

    private sealed class StrongBox(long v) { public long Value = v; }

    /// <summary>The same event through the full KongSimulator (for comparing the driver's own CPU cost).</summary>
    private static void RunSim(KongWorker w, PluginEntity entity, RequestTemplate r, SlotStats st)
    {
        var req = r.ToSimRequest();
        var res = w.RunAsync(entity, "access", req).GetAwaiter().GetResult();
        st.Events++;
        st.PdkCalls += res.PdkCalls.Count;
        st.RoundTrips += res.ReceiveBatches;
        if (res.Outcome == SimOutcome.Completed) st.Completed++;
        else if (res.Outcome == SimOutcome.Exited) st.Exited++;
        else { st.Failed++; st.LastError ??= res.Error; return; }
        bool ok = r.Expect switch
        {
            Expect.Allow => res.Outcome == SimOutcome.Completed,
            Expect.Reject401 => res.Status == 401,
            Expect.Deny403 => res.Status == 403,
            _ => false,
        };
        if (!ok) { st.Unexpected++; st.LastError ??= $"expected {r.Expect}, got {res.Outcome} {res.Status} {res.Error}"; }
    }

    private static string? s_node;

    public static string NodeVersion()
    {
        if (s_node is not null) return s_node;
        try
        {
            var p = Process.Start(new ProcessStartInfo("node", "--version") { RedirectStandardOutput = true, UseShellExecute = false })!;
            s_node = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
        }
        catch { s_node = "?"; }
        return s_node;
    }
}
