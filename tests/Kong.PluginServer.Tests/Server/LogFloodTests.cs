using System.Net.Sockets;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Lines a client can cause at will are rate-limited: one per cause and interval, plus a count of the rest.</summary>
public class LogFloodTests
{
    private static string[] Lines(StringWriter w) => w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public async Task A_cause_writes_one_line_per_interval_and_then_the_count_of_those_suppressed()
    {
        var w = new StringWriter();
        var log = new ServerLog(TextWriter.Synchronized(w), LogLevel.Info, TimeSpan.FromMilliseconds(300));
        for (int i = 0; i < 1000; i++)
            log.Limited(LogLevel.Error, $"connection limit 8 reached; closing a new connection", "limit", "connection limit 8 reached; closed {0} more in the last {1} s");
        Assert.Single(Lines(w));

        await T.Until(() => Lines(w).Length == 2, "the interval's report");
        Assert.EndsWith(" error connection limit 8 reached; closed 999 more in the last 0.3 s", Lines(w)[1]);

        await Task.Delay(700); // a quiet interval: the cause is forgotten, the next line is written at once
        log.Limited(LogLevel.Error, "connection limit 8 reached; closing a new connection", "limit", "closed {0}");
        Assert.Equal(3, Lines(w).Length);
        Assert.EndsWith("closing a new connection", Lines(w)[2]);
    }

    [Fact]
    public async Task Per_connection_lines_are_limited_by_their_text_without_numbers()
    {
        var w = new StringWriter();
        var log = new ServerLog(TextWriter.Synchronized(w), LogLevel.Info, TimeSpan.FromMilliseconds(300));
        for (int i = 0; i < 500; i++)
        {
            log.Warn($"connection {i}: closing: frame of {100 + i} bytes is over the 64-byte limit");
            log.Info($"connection {i}: no plugin instance {7000 + i}; closing so that Kong restarts it");
        }
        for (int i = 0; i < 100; i++) log.Warn("accept failed: TooManyOpenSockets"); // out of descriptors: one line
        log.Error("connection 9: instance refused: issuer: required");          // another cause: written
        log.Info("instance 5 started");                                         // not a per-connection line
        log.Info("instance 6 started");
        var lines = Lines(w);
        Assert.Equal(6, lines.Length);
        Assert.Contains(lines, l => l.EndsWith("connection 0: closing: frame of 100 bytes is over the 64-byte limit", StringComparison.Ordinal));

        await T.Until(() => Lines(w).Length == 9, "the reports of the three causes");
        Assert.Contains(Lines(w), l => l.EndsWith(" warn accept failed: TooManyOpenSockets [99 more like this in the last 0.3 s]", StringComparison.Ordinal));
        Assert.Contains(Lines(w), l => l.Contains(" warn connection 499: closing: frame of 599 bytes is over the 64-byte limit [499 more like this in the last 0.3 s]", StringComparison.Ordinal));
        Assert.Contains(Lines(w), l => l.Contains(" info connection 499: no plugin instance 7499; closing so that Kong restarts it [499 more like this", StringComparison.Ordinal));
    }

    [Fact]
    public void Distinct_causes_are_bounded_too()
    {
        var w = new StringWriter();
        var log = new ServerLog(w, LogLevel.Info);
        for (int i = 0; i < 5000; i++) log.Warn($"connection {i}: unknown method m{(char)('a' + i % 26)}{(char)('a' + i / 26 % 26)}{(char)('a' + i / 676 % 26)}");
        Assert.Equal(ServerLog.MaxCauses + 1, Lines(w).Length); // every distinct cause beyond the limit shares one line
    }

    [Fact]
    public async Task Causes_that_went_quiet_make_room_for_new_ones()
    {
        var w = new StringWriter();
        var log = new ServerLog(TextWriter.Synchronized(w), LogLevel.Info, TimeSpan.FromMilliseconds(100));
        for (int i = 0; i < ServerLog.MaxCauses; i++) log.Warn($"connection 1: unknown method m{(char)('a' + i % 26)}{(char)('a' + i / 26)}");
        await Task.Delay(300);
        log.Warn("connection 2: unknown method late");   // a new cause, written as itself
        log.Warn("connection 3: unknown method later");  // and another: the quiet ones no longer take the places
        Assert.Equal(ServerLog.MaxCauses + 2, Lines(w).Length);
        Assert.EndsWith("connection 3: unknown method later", Lines(w)[^1]);
    }

    [Fact]
    public void Levels_below_the_log_level_are_not_counted_or_written()
    {
        var w = new StringWriter();
        var log = new ServerLog(w, LogLevel.Warn);
        for (int i = 0; i < 10; i++) log.Info($"connection {i}: socket error: ConnectionReset");
        log.Notice("notice");
        Assert.Empty(Lines(w));
        log.Warn("warn");
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn warn$", Lines(w).Single());
        Assert.Equal(LogLevel.Notice, ServerLog.ParseLevel("notice"));
    }

    [Fact]
    public async Task A_flood_at_the_connection_limit_writes_a_bounded_number_of_lines()
    {
        var w = new StringWriter();
        var log = new ServerLog(TextWriter.Synchronized(w), LogLevel.Info);
        await using var host = T.Host(new EchoPlugin(), configure: o => new ServerOptions
        {
            SocketPath = o.SocketPath, Protocol = o.Protocol, MaxConnections = 2, Log = log,
        });
        using var a = await T.RawSocket(host);
        using var b = await T.RawSocket(host);
        await T.Until(() => host.Server.ActiveConnections == 2, "two connections held");

        const int Flood = 2000;
        int closed = 0;
        for (int i = 0; i < Flood; i++)
        {
            using var s = await T.RawSocket(host);
            if ((await T.ReadToClose(s)).Closed) closed++; // refused: closed by the server at once
        }

        Assert.Equal(Flood, closed);
        var limitLines = Lines(w).Where(l => l.Contains("connection limit 2 reached", StringComparison.Ordinal)).ToArray();
        Assert.True(limitLines.Length is >= 1 and <= 2, string.Join("\n", limitLines)); // the first, and a report if 10 s passed
        Assert.EndsWith("connection limit 2 reached; closing a new connection", limitLines[0]);
        Assert.Equal(2, host.Server.ActiveConnections);
    }
}
