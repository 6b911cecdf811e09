using System.Globalization;
using System.Text;

namespace Kong.PluginServer;

public enum LogLevel { Debug = 0, Info = 1, Notice = 2, Warn = 3, Error = 4, Off = 5 }

/// <summary>
/// The server's own log: one line per record on stderr (Kong copies the server's output into its error
/// log, prefixed with the server name). stdout is reserved for `-dump`. Thread-safe.
/// <para>
/// Lines a client can make the server write at will are rate-limited: at most one line per cause and
/// <see cref="RepeatInterval"/>, and one more line at the end of the interval counting what was suppressed
/// (<see cref="Limited"/>). Per-connection lines (<c>connection N: ...</c>) and failed accepts (<c>accept failed: ...</c>,
/// e.g. out of descriptors under a connection flood) are always limited that way, a cause being the line with its
/// numbers left out; so are lines written through <see cref="Limited"/> by the server.
/// </para>
/// </summary>
public sealed class ServerLog
{
    /// <summary>At most this many causes are tracked per interval; further ones share one line.</summary>
    public const int MaxCauses = 64;
    private const string OverflowCause = "(other repeated lines)";
    private const int MaxCauseLength = 160;

    public static ServerLog Default { get; } = new(Console.Error, LogLevel.Notice);
    public static ServerLog Silent { get; } = new(TextWriter.Null, LogLevel.Off);

    private readonly TextWriter _output;
    private readonly object _lock = new();
    private readonly object _repeatLock = new();
    private readonly Dictionary<string, Repeat> _repeats = new(StringComparer.Ordinal);
    private Timer? _timer;
    private bool _timerArmed;

    public ServerLog(TextWriter output, LogLevel level) : this(output, level, TimeSpan.FromSeconds(10)) { }

    /// <param name="output">Where lines go (Kong copies the server's stderr into its error log).</param>
    /// <param name="level">The least severe level written.</param>
    /// <param name="repeatInterval">The interval of <see cref="Limited"/>: one line per cause per interval.</param>
    public ServerLog(TextWriter output, LogLevel level, TimeSpan repeatInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(repeatInterval, TimeSpan.Zero);
        _output = output;
        Level = level;
        RepeatInterval = repeatInterval;
    }

    public LogLevel Level { get; }

    /// <summary>A cause of <see cref="Limited"/> lines writes at most one line per interval.</summary>
    public TimeSpan RepeatInterval { get; }

    public bool IsEnabled(LogLevel level) => level >= Level && Level != LogLevel.Off;

    public void Debug(string message) => Write(LogLevel.Debug, message);
    public void Info(string message) => Write(LogLevel.Info, message);
    public void Notice(string message) => Write(LogLevel.Notice, message);
    public void Warn(string message) => Write(LogLevel.Warn, message);
    public void Error(string message) => Write(LogLevel.Error, message);

    public void Write(LogLevel level, string message)
    {
        if (!IsEnabled(level)) return;
        if (IsConnectionLine(message)) Limited(level, message);
        else WriteLine(level, message);
    }

    /// <summary>
    /// Writes <paramref name="message"/> unless a line of the same <paramref name="cause"/> was written within the
    /// <see cref="RepeatInterval"/>; those suppressed are counted, and reported in one line when the interval ends
    /// (then again every interval while they go on). The report is <paramref name="summary"/> formatted with the count
    /// (<c>{0}</c>, e.g. <c>58,953</c>) and the interval in seconds (<c>{1}</c>), or the last suppressed line with the count.
    /// </summary>
    /// <param name="level">The line's level.</param>
    /// <param name="message">The line.</param>
    /// <param name="cause">What makes lines "the same"; by default the message with its numbers left out.</param>
    /// <param name="summary">The report's format, <c>{0}</c> the count and <c>{1}</c> the interval; null: the last line with the count.</param>
    public void Limited(LogLevel level, string message, string? cause = null, string? summary = null)
    {
        if (!IsEnabled(level)) return;
        cause ??= CauseOf(message);
        string? report = null;
        long now = Environment.TickCount64;
        lock (_repeatLock)
        {
            if (!_repeats.TryGetValue(cause, out var r))
            {
                if (_repeats.Count >= MaxCauses) ForgetIdleLocked(now);
                if (_repeats.Count >= MaxCauses)
                {
                    cause = OverflowCause;
                    summary = null;
                    _repeats.TryGetValue(cause, out r);
                }
                if (r is null) _repeats[cause] = r = new Repeat(level, summary) { WindowStart = now - IntervalMs };
            }
            r.Level = level;
            if (now - r.WindowStart < IntervalMs)
            {
                r.Suppressed++;
                r.Last = message;
                ArmLocked(r.WindowStart + IntervalMs - now);
                return;
            }
            if (r.Suppressed > 0) report = ReportLocked(r);
            r.WindowStart = now;
        }
        if (report is not null) WriteLine(level, report);
        WriteLine(level, message);
    }

    private long IntervalMs => (long)RepeatInterval.TotalMilliseconds;

    /// <summary>Drops the causes whose interval is over with nothing suppressed (no report is due for them).</summary>
    private void ForgetIdleLocked(long now)
    {
        List<string>? idle = null;
        foreach (var (cause, r) in _repeats)
            if (r.Suppressed == 0 && now - r.WindowStart >= IntervalMs) (idle ??= []).Add(cause);
        if (idle is not null) foreach (var c in idle) _repeats.Remove(c);
    }

    private sealed class Repeat(LogLevel level, string? summary)
    {
        public LogLevel Level = level;
        public readonly string? Summary = summary;
        public long WindowStart;
        public long Suppressed;
        public string? Last;
    }

    private string ReportLocked(Repeat r)
    {
        long n = r.Suppressed;
        r.Suppressed = 0;
        string count = n.ToString("N0", CultureInfo.InvariantCulture);
        string seconds = RepeatInterval.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        return r.Summary is { } format
            ? string.Format(CultureInfo.InvariantCulture, format, count, seconds)
            : $"{r.Last} [{count} more like this in the last {seconds} s]";
    }

    private void ArmLocked(long dueMs)
    {
        if (_timerArmed) return;
        _timerArmed = true;
        _timer ??= new Timer(static s => ((ServerLog)s!).OnInterval(), this, Timeout.Infinite, Timeout.Infinite);
        _timer.Change(Math.Max(1, dueMs), Timeout.Infinite);
    }

    /// <summary>At an interval's end: the suppressed counts are reported, idle causes forgotten.</summary>
    private void OnInterval()
    {
        List<(LogLevel, string)>? reports = null;
        long now = Environment.TickCount64;
        lock (_repeatLock)
        {
            _timerArmed = false;
            long next = long.MaxValue;
            ForgetIdleLocked(now);
            foreach (var (_, r) in _repeats)
            {
                long left = r.WindowStart + IntervalMs - now;
                if (left > 0) { if (r.Suppressed > 0) next = Math.Min(next, left); continue; }
                if (r.Suppressed == 0) continue;
                (reports ??= []).Add((r.Level, ReportLocked(r)));
                r.WindowStart = now; // the report is this interval's line of the cause
            }
            if (next != long.MaxValue) ArmLocked(next);
        }
        if (reports is not null) foreach (var (level, line) in reports) WriteLine(level, line);
    }

    /// <summary><c>connection N: ...</c>, the prefix of the lines that belong to one connection, or a failed accept.</summary>
    private static bool IsConnectionLine(string message)
    {
        if (message.StartsWith("accept failed:", StringComparison.Ordinal)) return true;
        const string prefix = "connection ";
        if (!message.StartsWith(prefix, StringComparison.Ordinal)) return false;
        int i = prefix.Length;
        while (i < message.Length && char.IsAsciiDigit(message[i])) i++;
        return i > prefix.Length && i < message.Length && message[i] == ':';
    }

    /// <summary>The message with every run of digits as <c>#</c>, capped: lines differing only in ids and sizes are one cause.</summary>
    private static string CauseOf(string message)
    {
        var sb = new StringBuilder(Math.Min(message.Length, MaxCauseLength));
        for (int i = 0; i < message.Length && sb.Length < MaxCauseLength; i++)
        {
            if (!char.IsAsciiDigit(message[i])) { sb.Append(message[i]); continue; }
            sb.Append('#');
            while (i + 1 < message.Length && char.IsAsciiDigit(message[i + 1])) i++;
        }
        return sb.ToString();
    }

    private void WriteLine(LogLevel level, string message)
    {
        var line = new StringBuilder(message.Length + 40)
            .Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture))
            .Append(' ').Append(Name(level)).Append(' ');
        foreach (char c in message) line.Append(c is '\n' or '\r' ? ' ' : c); // one line per record
        lock (_lock) { _output.WriteLine(line.ToString()); _output.Flush(); }
    }

    private static string Name(LogLevel level) => level switch
    {
        LogLevel.Debug => "debug",
        LogLevel.Info => "info",
        LogLevel.Notice => "notice",
        LogLevel.Warn => "warn",
        _ => "error",
    };

    public static LogLevel ParseLevel(string s) => s.ToLowerInvariant() switch
    {
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Info,
        "notice" => LogLevel.Notice,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        "off" or "none" => LogLevel.Off,
        _ => throw new FormatException($"unknown log level '{s}' (debug, info, notice, warn, error, off)"),
    };
}
