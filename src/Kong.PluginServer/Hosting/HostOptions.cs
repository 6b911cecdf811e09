using System.Globalization;
using System.Text;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Hosting;

/// <summary>
/// The command line of a plugin server executable, as Kong runs it (docs/hosting.md#command-line): <c>-dump</c> for the
/// query command, the socket (<c>-kong-prefix</c>, <c>--socket</c>), the protocol and the server's limits. Options take
/// one dash or two, like the Go PDK's; a value follows as the next argument or after <c>=</c>. The option table is
/// declared once (<see cref="Declare"/>): the parser and the usage text both read it.
/// </summary>
public sealed class HostOptions
{
    public const string DefaultPrefix = "/usr/local/kong";

    public bool Dump { get; private set; }
    /// <summary>With <see cref="Dump"/>: print only this plugin (Kong 3.9+ reads one plugin per pluginserver entry).</summary>
    public string? DumpPlugin { get; private set; }
    public bool Help { get; private set; }
    public bool ShowVersion { get; private set; }
    public string KongPrefix { get; private set; } = DefaultPrefix;
    /// <summary>The explicit socket path (<c>--socket</c>), or null for <c>&lt;kong-prefix&gt;/&lt;name&gt;.socket</c>.</summary>
    public string? Socket { get; private set; }
    public string Protocol { get; private set; } = PluginDump.ProtoBuf;
    public UnixFileMode SocketMode { get; private set; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public LogLevel LogLevel { get; private set; } = LogLevel.Notice;
    public int MaxFrameBytes { get; private set; } = ServerOptions.DefaultMaxFrameBytes;
    public TimeSpan InstanceIdleTimeout { get; private set; } = TimeSpan.FromHours(1);
    public TimeSpan ShutdownTimeout { get; private set; } = TimeSpan.FromSeconds(10);
    public int MaxConnections { get; private set; } = 4096;
    public int IoThreads { get; private set; } = ServerOptions.DefaultIoThreads;
    public TimeSpan IoSpin { get; private set; } = ServerOptions.DefaultIoSpin;
    public TimeSpan FrameIdleTimeout { get; private set; } = TimeSpan.FromSeconds(30);

    /// <summary>Where to listen: <see cref="Socket"/>, or <paramref name="socketName"/> in <see cref="KongPrefix"/>.</summary>
    public string SocketPath(string socketName) => Socket ?? Path.Combine(KongPrefix, socketName);

    /// <summary>
    /// The host's options, bound to <paramref name="o"/>: the one table the parser and the usage text read.
    /// <paramref name="socketName"/> only shapes the help of <c>-kong-prefix</c>.
    /// </summary>
    private static HostOption[] Declare(HostOptions o, string socketName) =>
    [
        new("dump", "print {\"Protocol\", \"Plugins\": [...]} on stdout and exit", () => o.Dump = true) { SingleDash = true },
        new("dump-plugin", "NAME", "with -dump: only plugin NAME (Kong 3.9+ reads one plugin per pluginserver entry)",
            v => o.DumpPlugin = NonEmpty("--dump-plugin", v)),
        new("kong-prefix", "DIR", $"socket at DIR/{socketName} (default {DefaultPrefix})", v => o.KongPrefix = NonEmpty("-kong-prefix", v)) { SingleDash = true },
        new("socket", "PATH", "explicit socket path (overrides -kong-prefix)", v => o.Socket = NonEmpty("--socket", v)),
        new("protocol", "P", $"{PluginDump.ProtoBuf} (default) or {PluginDump.MsgPack}", v =>
        {
            if (v is not (PluginDump.ProtoBuf or PluginDump.MsgPack))
                throw new UsageException($"--protocol must be {PluginDump.ProtoBuf} or {PluginDump.MsgPack}, not '{v}'");
            o.Protocol = v;
        }),
        new("socket-mode", "OCTAL", "socket file mode (default 600: Kong starts the server as its workers' user;\n" +
                                    "660 with a shared group for a server started outside Kong as another user)", v => o.SocketMode = Mode(v)),
        new("log-level", "L", "debug, info, notice (default), warn, error, off; logs go to stderr", v =>
        {
            try { o.LogLevel = ServerLog.ParseLevel(v); }
            catch (FormatException e) { throw new UsageException("--log-level: " + e.Message); }
        }),
        new("max-frame-bytes", "N", $"largest frame/message accepted (default {ServerOptions.DefaultMaxFrameBytes}: Kong's largest, a get_headers\n" +
                                    "reply, is about 36 KiB with nginx's default header buffers)",
            v => o.MaxFrameBytes = (int)Number("--max-frame-bytes", v, 1024, int.MaxValue)),
        new("instance-idle-timeout", "S", "drop instances unused for S seconds (default 3600)",
            v => o.InstanceIdleTimeout = TimeSpan.FromSeconds(Number("--instance-idle-timeout", v, 1, 7 * 86400))),
        new("shutdown-timeout", "S", "on SIGTERM, wait at most S seconds for in-flight events (default 10)",
            v => o.ShutdownTimeout = TimeSpan.FromSeconds(Number("--shutdown-timeout", v, 0, 3600))),
        new("max-connections", "N", "concurrent connections served (default 4096)",
            v => o.MaxConnections = (int)Number("--max-connections", v, 1, 1_000_000)),
        new("io-threads", "N", "event loop threads (default half the cores, 1 to 4)",
            v => o.IoThreads = (int)Number("--io-threads", v, 1, 64)),
        new("io-spin-us", "N", $"poll N microseconds before an event loop sleeps (default {ServerOptions.DefaultIoSpin.TotalMicroseconds}, 0 to {ServerOptions.MaxIoSpin.TotalMicroseconds})",
            v => o.IoSpin = TimeSpan.FromMicroseconds(Number("--io-spin-us", v, 0, (long)ServerOptions.MaxIoSpin.TotalMicroseconds))),
        new("frame-idle-timeout", "S", "close a connection idle S seconds inside a frame (default 30)",
            v => o.FrameIdleTimeout = TimeSpan.FromSeconds(Number("--frame-idle-timeout", v, 1, 3600))),
        new("help", "this text", () => o.Help = true) { Aliases = ["h"] },
        new("version", "print the version", () => o.ShowVersion = true),
    ];

    /// <summary>The names of the host's own options (without dashes), in usage order.</summary>
    public static IReadOnlyList<string> Names { get; } = Declare(new HostOptions(), "NAME.socket").Select(d => d.Name).ToArray();

    /// <summary>
    /// Parses <paramref name="args"/>: the host's options and <paramref name="extra"/> ones (a product's, applied as they
    /// are met). Throws <see cref="UsageException"/> for an unknown option, a missing or bad value, or a bare argument.
    /// </summary>
    public static HostOptions Parse(IReadOnlyList<string> args, IEnumerable<HostOption>? extra = null)
    {
        var o = new HostOptions();
        var table = Table(o, "NAME.socket", extra);
        for (int i = 0; i < args.Count; i++)
        {
            string raw = args[i];
            string name = raw.StartsWith("--", StringComparison.Ordinal) ? raw[2..]
                : raw.StartsWith('-') && raw.Length > 1 ? raw[1..]
                : throw new UsageException($"unexpected argument '{raw}'");
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq > 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            var option = table.FirstOrDefault(d => d.Matches(name)) ?? throw new UsageException($"unknown option '{raw}'");
            if (!option.TakesValue)
            {
                if (inline is not null) throw new UsageException($"{raw[..(raw.IndexOf('='))]} takes no value");
                option.Apply("");
                continue;
            }
            if (inline is null && i + 1 >= args.Count) throw new UsageException($"{raw} needs a value");
            option.Apply(inline ?? args[++i]);
        }
        return o;
    }

    private static List<HostOption> Table(HostOptions o, string socketName, IEnumerable<HostOption>? extra)
    {
        var table = new List<HostOption>(Declare(o, socketName));
        foreach (var e in extra ?? [])
        {
            foreach (var n in e.Aliases.Prepend(e.Name))
                if (table.Any(d => d.Matches(n))) throw new ArgumentException($"option '{n}' is declared twice");
            // the product's options come before -h/--version in the usage text
            table.Insert(table.Count - 2, e);
        }
        return table;
    }

    /// <summary>
    /// The usage text: a head (<c>usage: PROGRAM [options]</c>, <c>-dump</c>, then <paramref name="commands"/>' lines) and
    /// one entry per option, the host's and <paramref name="extra"/>, each listed once.
    /// </summary>
    public static string Usage(string program, string socketName, IEnumerable<HostOption>? extra = null, IEnumerable<HostUsage>? commands = null)
    {
        var head = new List<HostUsage>
        {
            new("[options]", "serve Kong on a Unix socket"),
            new("-dump", "print the plugin info JSON for Kong's query command"),
        };
        head.AddRange(commands ?? []);
        var sb = new StringBuilder();
        for (int i = 0; i < head.Count; i++)
        {
            sb.Append(i == 0 ? "usage: " : "       ").Append(program).Append(' ');
            sb.Append(head[i].Synopsis.PadRight(Math.Max(HeadColumn, head[i].Synopsis.Length + 3))).Append(head[i].Description).Append('\n');
        }
        sb.Append("\noptions (one or two dashes):\n");
        const int Column = 30;
        foreach (var d in Table(new HostOptions(), socketName, extra))
        {
            string synopsis = d.Synopsis;
            var lines = d.Help.Split('\n');
            sb.Append("  ").Append(synopsis);
            if (synopsis.Length >= Column) sb.Append('\n').Append(' ', Column + 2);
            else sb.Append(' ', Column - synopsis.Length);
            sb.Append(lines[0]).Append('\n');
            foreach (var more in lines.Skip(1)) sb.Append(' ', Column + 2).Append(more).Append('\n');
        }
        return sb.ToString().TrimEnd('\n');
    }

    private const int HeadColumn = 21;

    /// <summary>The server's settings from these options.</summary>
    public ServerOptions ToServerOptions(string socketPath, ServerLog log, IServerObserver? observer = null) => new()
    {
        Observer = observer,
        SocketPath = socketPath,
        Protocol = Protocol,
        SocketMode = SocketMode,
        MaxFrameBytes = MaxFrameBytes,
        InstanceIdleTimeout = InstanceIdleTimeout,
        ShutdownTimeout = ShutdownTimeout,
        MaxConnections = MaxConnections,
        IoThreads = IoThreads,
        IoSpin = IoSpin,
        FrameIdleTimeout = FrameIdleTimeout,
        Log = log,
    };

    private static string NonEmpty(string flag, string v) =>
        string.IsNullOrWhiteSpace(v) ? throw new UsageException($"{flag} needs a non-empty value") : v;

    private static UnixFileMode Mode(string v)
    {
        try
        {
            int mode = Convert.ToInt32(v, 8);
            if (mode is < 0 or > 0x1FF) throw new FormatException();
            return (UnixFileMode)mode;
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new UsageException($"--socket-mode must be an octal mode such as 600 or 660, not '{v}'");
        }
    }

    private static long Number(string flag, string v, long min, long max)
    {
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < min || n > max)
            throw new UsageException($"{flag} must be a whole number in {min}..{max}, not '{v}'");
        return n;
    }
}
