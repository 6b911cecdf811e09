using System.Globalization;

namespace Resilience.Tests.Infrastructure;

/// <summary>/proc readings of the server process beyond the shared <see cref="Posix"/> (RSS, threads).</summary>
public static class Proc
{
    /// <summary>Resident set size in KiB (VmRSS of /proc/PID/status).</summary>
    public static long RssKiB(int pid) => StatusField(pid, "VmRSS:");

    /// <summary>Threads of the process (Threads of /proc/PID/status).</summary>
    public static long Threads(int pid) => StatusField(pid, "Threads:");

    private static long StatusField(int pid, string name)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal)) continue;
            var digits = new string(line.AsSpan(name.Length).ToString().Where(char.IsAsciiDigit).ToArray());
            return long.Parse(digits, CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"no {name} in /proc/{pid}/status");
    }
}

/// <summary>One reading of the server's resources.</summary>
public readonly record struct ProcSample(int Fds, long RssKiB, long Threads)
{
    public static ProcSample Of(int pid) => new(Posix.OpenFds(pid), Proc.RssKiB(pid), Proc.Threads(pid));
    public override string ToString() => $"fds={Fds} rss={RssKiB / 1024.0:F1} MiB threads={Threads}";
}
