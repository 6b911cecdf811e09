using System.Net.Sockets;
using Kong.PluginServer.Io;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Protocol.MsgPack;
using Kong.PluginServer.Protocol.ProtoBuf;

namespace Kong.PluginServer.Server;

/// <summary>
/// Kong's external plugin server for one plugin or several: listens on a Unix socket and serves its connections
/// from event loops (one thread per core by default). With several plugins, StartInstance's plugin name picks the
/// plugin, and every event goes to the plugin its instance was started for (docs/hosting.md#several-plugins).
/// Start with <see cref="Start"/>, stop with <see cref="StopAsync"/> (stop accepting, let in-flight events finish
/// within the bound, release Kong's pooled connections, remove the socket).
/// </summary>
public sealed class KongPluginServer : IAsyncDisposable, IServerCore
{
    private readonly Socket _listener;
    private readonly FileIdentity? _socketFile; // the socket file this server bound: removed at stop only while still at the path
    private readonly ConnectionHub _hub;
    private readonly MsgPackEvents _msgPackEvents;
    private int _inFlightEvents;
    private volatile bool _stopping, _refusing;
    private long _eventsServed;

    public KongPluginServer(IKongPlugin plugin, ServerOptions options) : this([plugin], options) { }

    /// <summary>A server for <paramref name="plugins"/> (at least one, names distinct), all on one socket.</summary>
    public KongPluginServer(IReadOnlyList<IKongPlugin> plugins, ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        if (plugins.Count == 0) throw new ArgumentException("a server serves at least one plugin", nameof(plugins));
        Plugins = [.. plugins];
        _pluginNames = new byte[Plugins.Count][];
        for (int i = 0; i < Plugins.Count; i++)
        {
            string name = Plugins[i].Info.Name;
            for (int j = 0; j < i; j++)
                if (Plugins[j].Info.Name == name) throw new ArgumentException($"two plugins are named '{name}'", nameof(plugins));
            _pluginNames[i] = System.Text.Encoding.UTF8.GetBytes(name);
        }
        Options = options;
        if (options.Protocol is not (PluginDump.ProtoBuf or PluginDump.MsgPack))
            throw new ArgumentException($"unknown protocol '{options.Protocol}' ({PluginDump.ProtoBuf} or {PluginDump.MsgPack})");
        Registry = new InstanceRegistry(Plugins, options.Log, options.InstanceIdleTimeout);
        _msgPackEvents = new MsgPackEvents(this);
        _listener = Bind(options, out _socketFile);
        _limitLine = $"connection limit {options.MaxConnections} reached; closing a new connection";
        _limitSummary = $"connection limit {options.MaxConnections} reached; closed {{0}} more in the last {{1}} s";
        bool protoBuf = options.Protocol == PluginDump.ProtoBuf;
        try
        {
            _hub = new ConnectionHub(this, options.IoThreads, options.IoSpin, t => protoBuf
                ? new ProtoBufConnection(this, t)
                : new MsgPackConnection(t, this, _msgPackEvents));
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    private readonly string _limitLine, _limitSummary;
    private readonly byte[][] _pluginNames;

    /// <summary>The plugin served (the first one, when the server serves several).</summary>
    public IKongPlugin Plugin => Plugins[0];

    /// <summary>Every plugin served, in the order given.</summary>
    public IReadOnlyList<IKongPlugin> Plugins { get; }

    /// <summary>
    /// The plugin a StartInstance names (its UTF-8 bytes, compared without allocating). An empty name means the plugin
    /// of a single-plugin server (Kong always sends the name; a bare client may not).
    /// </summary>
    internal bool TryGetPlugin(ReadOnlySpan<byte> name, out IKongPlugin plugin)
    {
        if (name.IsEmpty && Plugins.Count == 1) { plugin = Plugins[0]; return true; }
        for (int i = 0; i < _pluginNames.Length; i++)
        {
            if (name.SequenceEqual(_pluginNames[i])) { plugin = Plugins[i]; return true; }
        }
        plugin = null!;
        return false;
    }

    /// <summary>The names served, for messages: <c>'a', 'b'</c>.</summary>
    internal string PluginNameList => string.Join(", ", Plugins.Select(p => $"'{p.Info.Name}'"));

    public ServerOptions Options { get; }
    internal InstanceRegistry Registry { get; }

    /// <summary>Plugin instances Kong has started and not closed.</summary>
    public int InstanceCount => Registry.Count;

    /// <summary>Handlers in use: instances with equal configs share one.</summary>
    public int HandlerCount => Registry.HandlerCount;
    internal MsgPackEvents MsgPackEvents => _msgPackEvents;

    public int ActiveConnections => _hub.OpenConnections;
    public int InFlightEvents => Volatile.Read(ref _inFlightEvents);
    public long EventsServed => Interlocked.Read(ref _eventsServed);

    /// <summary>True once a stop began: nothing new is accepted.</summary>
    public bool Stopping => _stopping;

    /// <summary>
    /// True while stopping without a successor: no new event or instance starts (docs/protocol.md#draining). A server
    /// whose socket a successor took over keeps serving the connections it has until Kong closes them.
    /// </summary>
    public bool Refusing => _refusing;

    public void Start()
    {
        _hub.Start(_listener);
        Options.Log.Info($"serving {string.Join(", ", Plugins.Select(p => $"{p.Info.Name} {p.Info.Version}"))} ({Options.Protocol}) on {Options.SocketPath}");
    }

    /// <summary>
    /// Listens on the socket path, taking it over from whatever listens there: on `kong reload` the new worker 0
    /// starts this server while the old one still serves (docs/protocol.md#socket-file).
    /// </summary>
    private static Socket Bind(ServerOptions options, out FileIdentity? bound) =>
        SocketFile.Bind(options.SocketPath, options.SocketMode, 1024, options.Log, out bound);

    internal ConnectionHub Hub => _hub;

    /// <summary>Logs a refused connection at the limit: a flood writes one line per interval, with a count.</summary>
    internal void LogConnectionLimit() => Options.Log.Limited(LogLevel.Error, _limitLine, "connection limit", _limitSummary);

    /// <summary>Event loop threads (one per core by default, see <see cref="ServerOptions.IoThreads"/>).</summary>
    public int IoThreads => _hub.LoopCount;

    /// <summary>The event loops' zero-timeout polls while spinning and their sleeping waits (see <see cref="ServerOptions.IoSpin"/>).</summary>
    internal (long Polls, long Sleeps) IoSpinCounts => _hub.SpinCounts;

    /// <summary>A connection closed (any protocol).</summary>
    internal void ConnectionClosed() { }

    private long _lastCompaction;

    /// <summary>
    /// Large frames are rare (bodies); after one, a full blocking collection, at most every 10 s, returns the
    /// memory to the OS so one burst of big requests does not leave the process large for good.
    /// </summary>
    internal void ReturnMemorySoon()
    {
        long now = Environment.TickCount64, last = Interlocked.Read(ref _lastCompaction);
        if (now - last < 10_000 || Interlocked.CompareExchange(ref _lastCompaction, now, last) != last) return;
        ThreadPool.UnsafeQueueUserWorkItem(static _ => GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true), null);
    }

    private long _eventWrites;

    /// <summary>Socket writes made while serving events (each one a round trip with Kong, the last included).
    /// Divided by <see cref="EventsServed"/>: the round trips per event.</summary>
    public long EventWrites => Interlocked.Read(ref _eventWrites);

    internal void CountEventWrite() => Interlocked.Increment(ref _eventWrites);

    internal void EventStarted() => Interlocked.Increment(ref _inFlightEvents);

    /// <summary>An event counted as started that was refused before it ran (shutdown).</summary>
    internal void EventRefused() => Interlocked.Decrement(ref _inFlightEvents);

    internal void EventFinished(long startTimestamp)
    {
        Interlocked.Decrement(ref _inFlightEvents);
        Interlocked.Increment(ref _eventsServed);
        Options.Observer?.EventCompleted(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp));
    }

    /// <summary>How long a stopping server waits for Kong to close the pooled connections it released.</summary>
    private static readonly TimeSpan ReleaseBound = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Stops the way Kong survives (docs/protocol.md#draining). Stops accepting. When a successor has taken the socket
    /// over (a `kong reload`), Kong's new workers reach the successor and this server's connections belong to the old
    /// workers, which finish their requests and exit: they are served as before until Kong closes them (bounded by
    /// <see cref="ServerOptions.ShutdownTimeout"/>). Otherwise, or once that bound passes: starts no new event or
    /// instance; lets in-flight events finish; releases Kong's idle pooled connections by shutting our write side
    /// (never a plain close Kong could still be writing into); waits a little for Kong to close them; closes the rest.
    /// The socket file is removed only while it is still the one this server bound.
    /// </summary>
    public async Task StopAsync()
    {
        if (_stopping) return;
        _stopping = true;
        _hub.StopAccepting();
        try { _listener.Shutdown(SocketShutdown.Both); } catch { }
        _listener.Dispose();
        // During a `kong reload` a new server may own the path already while this one drains: only the file this
        // server bound is removed (the runtime's own unlink at close hits the temporary name it was bound under)
        bool succeeded = SocketFile.RemoveIfOwn(Options.SocketPath, _socketFile, Options.Log);
        var deadline = DateTime.UtcNow + Options.ShutdownTimeout;
        if (succeeded)
        {
            Options.Log.Info($"serving the {ActiveConnections} connections of Kong's old workers until they close them");
            while (ActiveConnections > 0 && DateTime.UtcNow < deadline) await Task.Delay(10).ConfigureAwait(false);
            if (ActiveConnections > 0) Options.Log.Warn($"{ActiveConnections} connections still open {Options.ShutdownTimeout.TotalSeconds:0} s after the takeover; releasing them");
            deadline = DateTime.UtcNow + ReleaseBound;
        }
        _refusing = true;
        // ProtoBuf:1: idle pooled connections go at once (events in flight release theirs when they end).
        // MsgPack:1: the Steps of events in flight arrive on pooled connections, so they go once the events are over.
        bool protoBuf = Options.Protocol == PluginDump.ProtoBuf;
        if (protoBuf) DrainIdle();
        while (InFlightEvents > 0 && DateTime.UtcNow < deadline) await Task.Delay(10).ConfigureAwait(false);
        if (InFlightEvents > 0) Options.Log.Warn($"{InFlightEvents} events still running at shutdown");
        DrainIdle();
        var released = DateTime.UtcNow + (deadline - DateTime.UtcNow < ReleaseBound ? deadline - DateTime.UtcNow : ReleaseBound);
        while (ActiveConnections > 0 && DateTime.UtcNow < released) await Task.Delay(10).ConfigureAwait(false);
        _hub.Dispose();
        _msgPackEvents.Dispose();
        Registry.Dispose();
        Options.Log.Info("stopped");
    }

    private void DrainIdle()
    {
        foreach (var t in _hub.Snapshot())
            lock (t.Gate) t.Handler.Drain();
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    InstanceRegistry IServerCore.Registry => Registry;
    bool IServerCore.TryGetPlugin(ReadOnlySpan<byte> name, out IKongPlugin plugin) => TryGetPlugin(name, out plugin);
    string IServerCore.PluginNameList => PluginNameList;
    ConnectionHub IServerCore.Hub => _hub;
    ServerLog IServerCore.Log => Options.Log;
    int IServerCore.MaxFrameBytes => Options.MaxFrameBytes;
    int IServerCore.MaxConnections => Options.MaxConnections;
    TimeSpan IServerCore.FrameIdleTimeout => Options.FrameIdleTimeout;
    void IServerCore.LogConnectionLimit() => LogConnectionLimit();
    void IServerCore.ConnectionClosed() => ConnectionClosed();
    void IServerCore.ReturnMemorySoon() => ReturnMemorySoon();
    void IServerCore.CountEventWrite() => CountEventWrite();
    void IServerCore.EventStarted() => EventStarted();
    void IServerCore.EventRefused() => EventRefused();
    void IServerCore.EventFinished(long startTimestamp) => EventFinished(startTimestamp);
}
