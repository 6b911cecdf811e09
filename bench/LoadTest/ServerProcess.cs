using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace LoadTest;

/// <summary>What /proc and the metrics endpoint say about the server at one moment.</summary>
public readonly record struct ServerSample(double CpuSeconds, double Events, double RoundTrips, double AllocatedBytes, bool HasMetrics);

/// <summary>A plugin server child process (ours or the JS PDK's) on a Unix socket in a temp directory.</summary>
public sealed class ServerProcess : IDisposable
{
    private static readonly long ClockTicks = Math.Max(1, sysconf(2 /* _SC_CLK_TCK */));
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [DllImport("libc", SetLastError = true)]
    private static extern long sysconf(int name);

    private readonly Process _process;
    private readonly string _dir;
    private readonly System.Text.StringBuilder _stderr = new();

    private ServerProcess(Process process, string dir, string socketPath, string? metricsUrl)
    {
        _process = process;
        _dir = dir;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) if (_stderr.Length < 16384) _stderr.AppendLine(e.Data);
        };
        _process.BeginErrorReadLine();
        SocketPath = socketPath;
        MetricsUrl = metricsUrl;
    }

    public string SocketPath { get; }
    public string? MetricsUrl { get; private set; }
    public int Pid => _process.Id;
    public string StartupNote { get; private set; } = "";

    public static ServerProcess StartOurs(string binary, Scenario s, bool withMetrics, Dictionary<string, string>? env = null)
    {
        var dir = Directory.CreateTempSubdirectory("loadtest-").FullName;
        var socket = Path.Combine(dir, "gitlab-ci-auth.socket");
        string? metrics = null;
        var args = new List<string> { "--socket", socket, "--protocol", s.ProtocolName, "--plugin", s.Plugin, "--log-level", "off" };
        if (withMetrics)
        {
            int port = FreePort();
            args.Add("--metrics-listen");
            args.Add($"127.0.0.1:{port}");
            metrics = $"http://127.0.0.1:{port}/metrics";
        }
        var p = Spawn(binary, args, env);
        var sp = new ServerProcess(p, dir, socket, metrics);
        if (!sp.WaitListening(TimeSpan.FromSeconds(15), out var why))
        {
            bool usage = sp._process.HasExited && sp._process.ExitCode == 2;
            var err = sp.DrainStderr();
            sp.Dispose();
            if (withMetrics && (usage || err.Contains("metrics-listen", StringComparison.Ordinal)))
            {
                // the binary predates the metrics endpoint: run without it (allocations and round trips unavailable)
                var again = StartOurs(binary, s, withMetrics: false, env);
                again.StartupNote = "this binary has no --metrics-listen: allocations and server round trips are not available";
                return again;
            }
            throw new InvalidOperationException($"{binary} did not start listening: {why}; stderr: {err}");
        }
        if (metrics is not null && !sp.WaitMetrics(TimeSpan.FromSeconds(10)))
        {
            sp.StartupNote = "the metrics endpoint did not answer: allocations and server round trips are not available";
            sp.MetricsUrl = null;
        }
        return sp;
    }

    public static ServerProcess StartJsPdk(string jsDir)
    {
        var dir = Directory.CreateTempSubdirectory("loadtest-js-").FullName;
        var bin = Path.Combine(jsDir, "node_modules", "kong-pdk", "bin", "kong-js-pluginserver");
        if (!File.Exists(bin)) throw new FileNotFoundException($"{bin} is missing: run `npm ci` in {jsDir}");
        var p = Spawn("node", [bin, "--plugins-directory", Path.Combine(jsDir, "plugins"), "--kong-prefix", dir, "--sock-name", "js_pluginserver.sock"]);
        var sp = new ServerProcess(p, dir, Path.Combine(dir, "js_pluginserver.sock"), null);
        if (!sp.WaitListening(TimeSpan.FromSeconds(30), out var why))
        {
            var err = sp.DrainStderr();
            sp.Dispose();
            throw new InvalidOperationException($"the JS PDK server did not start listening: {why}; stderr: {err}");
        }
        return sp;
    }

    private static Process Spawn(string file, IEnumerable<string> args, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NODE_ENV"] = "production";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
        p.OutputDataReceived += static (_, _) => { };
        p.BeginOutputReadLine();
        return p;
    }

    private string DrainStderr()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(2000);
            lock (_stderr) return _stderr.ToString().Trim();
        }
        catch (Exception e) { return e.Message; }
    }

    private bool WaitListening(TimeSpan timeout, out string why)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (_process.HasExited) { why = $"exited with code {_process.ExitCode}"; return false; }
            if (CanConnect(SocketPath)) { why = ""; return true; }
            Thread.Sleep(2);
        }
        why = "timeout";
        return false;
    }

    private bool WaitMetrics(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            try { if (Scrape() is not null) return true; } catch { }
            Thread.Sleep(20);
        }
        return false;
    }

    public static bool CanConnect(string path)
    {
        if (!File.Exists(path)) return false;
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { s.Connect(new UnixDomainSocketEndPoint(path)); return true; }
        catch (SocketException) { return false; }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>utime + stime of the whole process (live and exited threads), in seconds.</summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long utime = long.Parse(rest[11], CultureInfo.InvariantCulture), stime = long.Parse(rest[12], CultureInfo.InvariantCulture);
        return (utime + stime) / (double)ClockTicks;
    }

    /// <summary>Peak resident set size (VmHWM) in bytes.</summary>
    public long PeakRssBytes() => StatusKb("VmHWM:") * 1024;

    public long RssBytes() => StatusKb("VmRSS:") * 1024;

    public int Threads() => (int)StatusKb("Threads:");

    private long StatusKb(string key)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Reads the Prometheus text: metric name (labels summed) → value; null when there is no endpoint.</summary>
    public Dictionary<string, double>? Scrape()
    {
        if (MetricsUrl is null) return null;
        var text = Http.GetStringAsync(MetricsUrl).GetAwaiter().GetResult();
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            int sp = line.LastIndexOf(' ');
            if (sp <= 0) continue;
            var name = line[..sp];
            int brace = name.IndexOf('{');
            if (brace >= 0) name = name[..brace];
            if (!double.TryParse(line[(sp + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) continue;
            result[name] = result.GetValueOrDefault(name) + v;
        }
        return result;
    }

    /// <summary>A sample; <paramref name="cpuFirst"/> reads /proc before scraping, so the scrape's own CPU stays out of an "after" sample.</summary>
    public ServerSample Sample(bool cpuFirst = false)
    {
        double cpu = cpuFirst ? CpuSeconds() : 0;
        var m = Scrape();
        if (!cpuFirst) cpu = CpuSeconds();
        if (m is null) return new ServerSample(cpu, 0, 0, 0, false);
        return new ServerSample(cpu,
            m.GetValueOrDefault("pluginserver_events_total"),
            m.GetValueOrDefault("pluginserver_event_round_trips_total"),
            m.GetValueOrDefault("dotnet_gc_allocated_bytes_total"),
            m.ContainsKey("pluginserver_events_total") && m.ContainsKey("dotnet_gc_allocated_bytes_total"));
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch { }
        _process.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch { }
    }

    // ------------------------------------------------------------------ startup measurements

    /// <summary>Median wall time of <c>binary -dump</c> (process start to exit), and of /bin/true for the spawn floor.</summary>
    public static (double DumpMs, double SpawnFloorMs) MeasureDump(string binary, int runs = 7)
    {
        double Run(string file, params string[] args)
        {
            var times = new List<double>();
            for (int i = 0; i < runs; i++)
            {
                var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var a in args) psi.ArgumentList.Add(a);
                long t = Stopwatch.GetTimestamp();
                using var p = Process.Start(psi)!;
                p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}");
            }
            times.Sort();
            return times[times.Count / 2];
        }
        Run(binary, "-dump"); // page cache warm
        return (Run(binary, "-dump"), Run("/bin/true"));
    }

    /// <summary>Median time from process start to the socket accepting a connection.</summary>
    public static double MeasureStartToListening(string binary, string protocol, int runs = 7)
    {
        var times = new List<double>();
        for (int i = 0; i < runs + 1; i++)
        {
            var dir = Directory.CreateTempSubdirectory("loadtest-start-").FullName;
            var socket = Path.Combine(dir, "s.socket");
            var psi = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "--socket", socket, "--protocol", protocol, "--plugin", "gitlab-ci-auth", "--log-level", "off" }) psi.ArgumentList.Add(a);
            long t = Stopwatch.GetTimestamp();
            using var p = Process.Start(psi)!;
            double ms = double.NaN;
            while (Stopwatch.GetElapsedTime(t).TotalSeconds < 10 && !p.HasExited)
            {
                if (CanConnect(socket)) { ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds; break; }
                Thread.SpinWait(200);
            }
            try { p.Kill(); p.WaitForExit(2000); } catch { }
            try { Directory.Delete(dir, true); } catch { }
            if (i > 0) times.Add(ms); // the first run warms the page cache
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
