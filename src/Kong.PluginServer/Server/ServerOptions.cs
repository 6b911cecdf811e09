using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Server;

/// <summary>How the plugin server listens and behaves. Defaults are the documented ones.</summary>
public sealed class ServerOptions
{
    /// <summary>Unix socket path Kong connects to (kong.conf pluginserver_NAME_socket).</summary>
    public required string SocketPath { get; init; }

    /// <summary><see cref="PluginDump.ProtoBuf"/> (default) or <see cref="PluginDump.MsgPack"/>.</summary>
    public string Protocol { get; init; } = PluginDump.ProtoBuf;

    /// <summary>
    /// Socket file mode. Default 0600: Kong's worker 0 starts the server (start_cmd), so it runs as the same user as
    /// Kong's workers, the only ones that need to connect. A server started outside Kong as another user needs a
    /// wider mode (0660 with a group shared with Kong's workers).
    /// </summary>
    public UnixFileMode SocketMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// Largest frame (ProtoBuf:1) or message (MsgPack:1) accepted. Default 64 KiB: the largest Kong sends with its
    /// buffer settings is a get_headers reply of about 36 KiB (docs/protocol.md#frame-sizes). A bigger one is read and
    /// dropped without being buffered: a PDK reply fails the call that awaited it, a command closes the connection.
    /// </summary>
    public int MaxFrameBytes { get; init; } = DefaultMaxFrameBytes;

    public const int DefaultMaxFrameBytes = 64 * 1024;

    /// <summary>An instance unused this long is dropped (Kong re-creates it after "closed"). Default 1 hour.</summary>
    public TimeSpan InstanceIdleTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>On SIGTERM, how long in-flight events may take to finish. Default 10 s.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Event loop threads serving the connections. Default: half the cores, at least 1 and at most 4. Kong's nginx
    /// workers need most of the CPU; fewer, busier loops find more ready connections per wake-up and sleep less
    /// (on 2 cores one loop cost 30 % less CPU per request than two, see bench/README.md).
    /// </summary>
    public int IoThreads { get; init; } = DefaultIoThreads;

    public static int DefaultIoThreads => Math.Clamp(Environment.ProcessorCount / 2, 1, 4);

    /// <summary>
    /// How long an event loop that has just served input keeps polling its connections (epoll with no timeout)
    /// before it sleeps. Default 10 us: under load Kong's next frame often arrives within microseconds (nginx writes
    /// a frame's length and its payload as two sends, and answers PDK calls at once), and a sleep and wake-up costs
    /// both the server and nginx more than those polls (bench/README.md: 5 us against none, 10 against 5, 20 against 10). An idle loop does
    /// not poll: it sleeps until input arrives. <see cref="TimeSpan.Zero"/> sleeps at once.
    /// </summary>
    public TimeSpan IoSpin { get; init; } = DefaultIoSpin;

    public static readonly TimeSpan DefaultIoSpin = TimeSpan.FromMicroseconds(10);

    /// <summary>The largest <see cref="IoSpin"/> accepted: longer polls only burn CPU that nginx needs.</summary>
    public static readonly TimeSpan MaxIoSpin = TimeSpan.FromMilliseconds(1);

    /// <summary>A connection idle this long in the middle of a frame or message is closed. Default 30 s.</summary>
    public TimeSpan FrameIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Concurrent connections served; more are closed at once and logged. Default 4096.</summary>
    public int MaxConnections { get; init; } = 4096;

    public ServerLog Log { get; init; } = ServerLog.Default;

    /// <summary>Optional hook for metrics: told the duration of every event. Must be cheap and thread-safe.</summary>
    public IServerObserver? Observer { get; init; }
}

/// <summary>Receives server-level measurements (the host feeds them to its metrics exposition).</summary>
public interface IServerObserver
{
    void EventCompleted(TimeSpan duration);
}
