using System.Globalization;
using Kong.PluginServer;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace GitLabCiAuth.Host;

/// <summary>Raised for a bad command line: printed on stderr, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>The serve/dump command line, following Kong's and the Go PDK's conventions (single or double dash).</summary>
public sealed class HostOptions
{
    public const string DefaultPrefix = "/usr/local/kong";
    public const string SocketName = "gitlab-ci-auth.socket";

    public bool Dump { get; private set; }
    public bool Help { get; private set; }
    public bool ShowVersion { get; private set; }
    public string KongPrefix { get; private set; } = DefaultPrefix;
    public string? Socket { get; private set; }
    public string Protocol { get; private set; } = PluginDump.ProtoBuf;
    public string Plugin { get; private set; } = "gitlab-ci-auth";
    public UnixFileMode SocketMode { get; private set; } = (UnixFileMode)Convert.ToInt32("600", 8);
    public LogLevel LogLevel { get; private set; } = LogLevel.Notice;
    public int MaxFrameBytes { get; private set; } = ServerOptions.DefaultMaxFrameBytes;
    public TimeSpan InstanceIdleTimeout { get; private set; } = TimeSpan.FromHours(1);
    public TimeSpan ShutdownTimeout { get; private set; } = TimeSpan.FromSeconds(10);
    public int MaxConnections { get; private set; } = 4096;
    public int IoThreads { get; private set; } = ServerOptions.DefaultIoThreads;
    public TimeSpan FrameIdleTimeout { get; private set; } = TimeSpan.FromSeconds(30);
    public string? MetricsListen { get; private set; }

    public string SocketPath => Socket ?? Path.Combine(KongPrefix, SocketName);

    public const string Usage = """
        usage: gitlab-ci-auth [options]            serve Kong on a Unix socket
               gitlab-ci-auth -dump                print the plugin info JSON for Kong's query command
               gitlab-ci-auth demo                 play a story of CI calls on an embedded default
               gitlab-ci-auth check --config FILE --token T|-   why was a job allowed or denied? (check --help)
               gitlab-ci-auth check --lint FILE    validate the gitlab-ci-auth configs of a file (no token)

        options (one or two dashes):
          -dump, --dump                 print {"Protocol", "Plugins": [...]} on stdout and exit
          -kong-prefix DIR              socket at DIR/gitlab-ci-auth.socket (default /usr/local/kong)
          --socket PATH                 explicit socket path (overrides -kong-prefix)
          --protocol P                  ProtoBuf:1 (default) or MsgPack:1
          --socket-mode OCTAL           socket file mode (default 600: Kong starts the server as its workers' user;
                                        660 with a shared group for a server started outside Kong as another user)
          --log-level L                 debug, info, notice (default), warn, error, off; logs go to stderr
          --max-frame-bytes N           largest frame/message accepted (default 65536: Kong's largest, a get_headers
                                        reply, is about 36 KiB with nginx's default header buffers)
          --instance-idle-timeout S     drop instances unused for S seconds (default 3600)
          --shutdown-timeout S          on SIGTERM, wait at most S seconds for in-flight events (default 10)
          --max-connections N           concurrent connections served (default 4096)
          --io-threads N                event loop threads (default half the cores, 1 to 4)
          --frame-idle-timeout S        close a connection idle S seconds inside a frame (default 30)
          --metrics-listen HOST:PORT    serve Prometheus metrics at http://HOST:PORT/metrics (off by default)
          --plugin NAME                 gitlab-ci-auth (default) or example (the protocol-floor example)
          -h, --help                    this text
          --version                     print the version
        """;

    public static HostOptions Parse(IReadOnlyList<string> args)
    {
        var o = new HostOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string raw = args[i];
            string name = raw.StartsWith("--", StringComparison.Ordinal) ? raw[2..] : raw.StartsWith('-') ? raw[1..] : throw new UsageException($"unexpected argument '{raw}'");
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq > 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            string Value()
            {
                if (inline is not null) return inline;
                if (i + 1 >= args.Count) throw new UsageException($"{raw} needs a value");
                return args[++i];
            }
            switch (name)
            {
                case "dump": o.Dump = true; break;
                case "h" or "help": o.Help = true; break;
                case "version": o.ShowVersion = true; break;
                case "kong-prefix": o.KongPrefix = NonEmpty(raw, Value()); break;
                case "socket": o.Socket = NonEmpty(raw, Value()); break;
                case "protocol":
                    o.Protocol = Value();
                    if (o.Protocol is not (PluginDump.ProtoBuf or PluginDump.MsgPack))
                        throw new UsageException($"--protocol must be {PluginDump.ProtoBuf} or {PluginDump.MsgPack}, not '{o.Protocol}'");
                    break;
                case "socket-mode":
                {
                    string v = Value();
                    try
                    {
                        int mode = Convert.ToInt32(v, 8);
                        if (mode is < 0 or > 0x1FF) throw new FormatException();
                        o.SocketMode = (UnixFileMode)mode;
                    }
                    catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
                    {
                        throw new UsageException($"--socket-mode must be an octal mode such as 600 or 660, not '{v}'");
                    }
                    break;
                }
                case "log-level":
                    try { o.LogLevel = ServerLog.ParseLevel(Value()); }
                    catch (FormatException e) { throw new UsageException("--log-level: " + e.Message); }
                    break;
                case "max-frame-bytes": o.MaxFrameBytes = (int)Number(raw, Value(), 1024, int.MaxValue); break;
                case "instance-idle-timeout": o.InstanceIdleTimeout = TimeSpan.FromSeconds(Number(raw, Value(), 1, 7 * 86400)); break;
                case "shutdown-timeout": o.ShutdownTimeout = TimeSpan.FromSeconds(Number(raw, Value(), 0, 3600)); break;
                case "max-connections": o.MaxConnections = (int)Number(raw, Value(), 1, 1_000_000); break;
                case "io-threads": o.IoThreads = (int)Number(raw, Value(), 1, 64); break;
                case "frame-idle-timeout": o.FrameIdleTimeout = TimeSpan.FromSeconds(Number(raw, Value(), 1, 3600)); break;
                case "metrics-listen":
                    o.MetricsListen = Value();
                    Metrics.MetricsEndpoint.Parse(o.MetricsListen);
                    break;
                case "plugin":
                    o.Plugin = Value();
                    if (o.Plugin is not ("gitlab-ci-auth" or "example"))
                        throw new UsageException($"--plugin must be gitlab-ci-auth or example, not '{o.Plugin}'");
                    break;
                default:
                    throw new UsageException($"unknown option '{raw}'");
            }
        }
        return o;
    }

    private static string NonEmpty(string flag, string v) =>
        string.IsNullOrWhiteSpace(v) ? throw new UsageException($"{flag} needs a non-empty value") : v;

    private static long Number(string flag, string v, long min, long max)
    {
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < min || n > max)
            throw new UsageException($"{flag} must be a whole number in {min}..{max}, not '{v}'");
        return n;
    }

    public ServerOptions ToServerOptions(ServerLog log, IServerObserver? observer = null) => new()
    {
        Observer = observer,
        SocketPath = SocketPath,
        Protocol = Protocol,
        SocketMode = SocketMode,
        MaxFrameBytes = MaxFrameBytes,
        InstanceIdleTimeout = InstanceIdleTimeout,
        ShutdownTimeout = ShutdownTimeout,
        MaxConnections = MaxConnections,
        IoThreads = IoThreads,
        FrameIdleTimeout = FrameIdleTimeout,
        Log = log,
    };
}
