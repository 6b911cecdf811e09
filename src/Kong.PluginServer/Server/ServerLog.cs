using System.Text;

namespace Kong.PluginServer.Server;

public enum LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 }

/// <summary>
/// The server's own log: one line per record on stderr (Kong copies the server's output into its error
/// log, prefixed with the server name). stdout is reserved for `-dump`. Thread-safe.
/// </summary>
public sealed class ServerLog(TextWriter output, LogLevel level)
{
    public static ServerLog Default { get; } = new(Console.Error, LogLevel.Warn);
    public static ServerLog Silent { get; } = new(TextWriter.Null, LogLevel.Off);

    private readonly object _lock = new();

    public LogLevel Level { get; } = level;

    public bool IsEnabled(LogLevel level) => level >= Level && Level != LogLevel.Off;

    public void Debug(string message) => Write(LogLevel.Debug, message);
    public void Info(string message) => Write(LogLevel.Info, message);
    public void Warn(string message) => Write(LogLevel.Warn, message);
    public void Error(string message) => Write(LogLevel.Error, message);

    public void Write(LogLevel level, string message)
    {
        if (!IsEnabled(level)) return;
        var line = new StringBuilder(message.Length + 40)
            .Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture))
            .Append(' ').Append(level switch { LogLevel.Debug => "debug", LogLevel.Info => "info", LogLevel.Warn => "warn", _ => "error" })
            .Append(' ');
        foreach (char c in message) line.Append(c is '\n' or '\r' ? ' ' : c); // one line per record
        lock (_lock) { output.WriteLine(line.ToString()); output.Flush(); }
    }

    public static LogLevel ParseLevel(string s) => s.ToLowerInvariant() switch
    {
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Info,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        "off" or "none" => LogLevel.Off,
        _ => throw new FormatException($"unknown log level '{s}' (debug, info, warn, error, off)"),
    };
}
