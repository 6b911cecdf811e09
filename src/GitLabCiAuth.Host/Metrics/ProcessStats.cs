using System.Globalization;

namespace GitLabCiAuth.Host.Metrics;

/// <summary>
/// The standard <c>process_*</c> metrics, read from Linux's /proc/self at each scrape. prometheus-net exports its
/// own process metrics only on its default registry and under other names (process_working_set_bytes,
/// process_open_handles), so this endpoint's registry has them from here.
/// </summary>
internal static class ProcessStats
{
    public static double CpuSeconds => Environment.CpuUsage.TotalTime.TotalSeconds;

    /// <summary>Resident and virtual memory (/proc/self/statm: size and resident, in pages); 0 where /proc is missing.</summary>
    public static (long Resident, long Virtual) Memory()
    {
        var fields = ReadProc("/proc/self/statm")?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields is not { Length: >= 2 }) return (0, 0);
        long page = Environment.SystemPageSize;
        return (ParseLong(fields[1]) * page, ParseLong(fields[0]) * page);
    }

    /// <summary>Open file descriptors: the entries of /proc/self/fd.</summary>
    public static int OpenFds()
    {
        try { return Directory.EnumerateFileSystemEntries("/proc/self/fd").Count(); }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>The soft limit of open files (/proc/self/limits, "Max open files"); 0 when unlimited or unknown.</summary>
    public static long MaxFds()
    {
        foreach (var line in (ReadProc("/proc/self/limits") ?? "").Split('\n'))
        {
            if (!line.StartsWith("Max open files", StringComparison.Ordinal)) continue;
            var parts = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts.Length > 0 ? ParseLong(parts[0]) : 0;
        }
        return 0;
    }

    /// <summary>Seconds since the epoch at which the process started.</summary>
    public static double StartTimeSeconds { get; } =
        new DateTimeOffset(System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;

    private static string? ReadProc(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static long ParseLong(string s) => long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : 0;
}
