using System.Net.Sockets;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Server;

/// <summary>
/// Kong's external plugin server for one plugin: listens on a Unix socket and serves each connection
/// on its own thread. Start with <see cref="Start"/>, stop with <see cref="StopAsync"/> (stop accepting,
/// let in-flight events finish within the bound, remove the socket).
/// </summary>
public sealed class KongPluginServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly FileIdentity? _socketFile; // the socket file this server bound: removed at stop only while still at the path
    private readonly Thread _acceptThread;
    private readonly object _connLock = new();
    private readonly HashSet<Socket> _connections = [];
    private readonly Protocol.MsgPack.MsgPackEvents _msgPackEvents;
    private int _nextConnectionId;
    private int _inFlightEvents;
    private volatile bool _stopping;
    private long _eventsServed;

    public KongPluginServer(IKongPlugin plugin, ServerOptions options)
    {
        Plugin = plugin;
        Options = options;
        if (options.Protocol is not (PluginDump.ProtoBuf or PluginDump.MsgPack))
            throw new ArgumentException($"unknown protocol '{options.Protocol}' ({PluginDump.ProtoBuf} or {PluginDump.MsgPack})");
        Registry = new InstanceRegistry(plugin, options.Log, options.InstanceIdleTimeout);
        _msgPackEvents = new Protocol.MsgPack.MsgPackEvents(this);
        _listener = Bind(options, out _socketFile);
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "kong-accept" };
        _limitLine = $"connection limit {options.MaxConnections} reached; closing a new connection";
        _limitSummary = $"connection limit {options.MaxConnections} reached; closed {{0}} more in the last {{1}} s";
    }

    private readonly string _limitLine, _limitSummary;

    public IKongPlugin Plugin { get; }
    public ServerOptions Options { get; }
    public InstanceRegistry Registry { get; }
    internal Protocol.MsgPack.MsgPackEvents MsgPackEvents => _msgPackEvents;

    public int ActiveConnections { get { lock (_connLock) return _connections.Count; } }
    public int InFlightEvents => Volatile.Read(ref _inFlightEvents);
    public long EventsServed => Interlocked.Read(ref _eventsServed);

    /// <summary>True once a stop began: no new event starts.</summary>
    public bool Stopping => _stopping;

    public void Start()
    {
        _acceptThread.Start();
        Options.Log.Info($"serving {Plugin.Info.Name} {Plugin.Info.Version} ({Options.Protocol}) on {Options.SocketPath}");
    }

    /// <summary>
    /// Listens on the socket path, taking it over from whatever listens there: on `kong reload` the new worker 0
    /// starts this server while the old one still serves (docs/protocol.md#socket-file).
    /// </summary>
    private static Socket Bind(ServerOptions options, out FileIdentity? bound) =>
        SocketFile.Bind(options.SocketPath, options.SocketMode, 1024, options.Log, out bound);

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket conn;
            try { conn = _listener.Accept(); }
            catch (SocketException) when (_stopping) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                Options.Log.Warn($"accept failed: {e.SocketErrorCode}");
                Thread.Sleep(10);
                continue;
            }
            lock (_connLock)
            {
                if (_stopping || _connections.Count >= Options.MaxConnections)
                {
                    if (!_stopping) Options.Log.Limited(LogLevel.Error, _limitLine, "connection limit", _limitSummary); // a flood: one line per interval
                    conn.Dispose();
                    continue;
                }
                _connections.Add(conn);
            }
            int id = Interlocked.Increment(ref _nextConnectionId);
            Worker? idle = null;
            lock (_workerLock)
            {
                if (_idleWorkers.Count > 0)
                {
                    idle = _idleWorkers[^1];
                    _idleWorkers.RemoveAt(_idleWorkers.Count - 1);
                    idle.Socket = conn;
                    idle.Id = id;
                }
            }
            if (idle is not null) idle.Signal.Release();
            else StartWorker(conn, id);
        }
    }

    // Connections are served by parked worker threads that outlive them: accepting stays cheap under
    // connect bursts (Kong opens a new connection after every kong.response.exit), and each worker keeps
    // its connection object, buffers and PDK facade. A connection is handed to one idle worker, or to a
    // new one; workers idle for a minute exit.
    private sealed class Worker
    {
        public Socket? Socket;
        public int Id;
        public readonly SemaphoreSlim Signal = new(0);
    }

    private readonly object _workerLock = new();
    private readonly List<Worker> _idleWorkers = [];
    private int _workers;
    private static readonly TimeSpan WorkerIdleTimeout = TimeSpan.FromMinutes(1);

    /// <summary>Worker threads alive (serving or parked).</summary>
    public int Workers => Volatile.Read(ref _workers);

    private void StartWorker(Socket first, int id)
    {
        int n = Interlocked.Increment(ref _workers);
        var w = new Worker { Socket = first, Id = id };
        new Thread(() => Work(w), 256 * 1024) { IsBackground = true, Name = $"kong-worker-{n}" }.Start();
    }

    private void Work(Worker w)
    {
        ProtoBufConnection? pb = null;
        try
        {
            while (true)
            {
                Serve(w.Socket!, w.Id, ref pb);
                lock (_workerLock)
                {
                    if (_stopping) return;
                    w.Socket = null;
                    _idleWorkers.Add(w);
                }
                if (!w.Signal.Wait(WorkerIdleTimeout))
                {
                    lock (_workerLock)
                    {
                        if (_idleWorkers.Remove(w)) return; // still idle: retire
                    }
                    w.Signal.Wait(); // handed a connection while timing out: its signal is on the way
                }
            }
        }
        finally
        {
            pb?.Dispose();
            Interlocked.Decrement(ref _workers);
        }
    }

    private void Serve(Socket socket, int id, ref ProtoBufConnection? pb)
    {
        try
        {
            if (_stopping) return;
            if (Options.Protocol == PluginDump.ProtoBuf)
            {
                pb ??= new ProtoBufConnection(this);
                pb.Attach(socket, id).Run();
            }
            else
            {
                using var c = new Protocol.MsgPack.MsgPackConnection(socket, this, id);
                c.Run();
            }
        }
        catch (Exception e)
        {
            Options.Log.Error($"connection {id}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            lock (_connLock) _connections.Remove(socket);
            socket.Dispose();
            if (pb?.ReleaseLargeBuffers() == true) ReturnMemorySoon();
        }
    }

    private long _lastCompaction;

    /// <summary>
    /// Large frames are rare (bodies); after one, a full blocking collection, at most every 10 s, returns the
    /// memory to the OS so one burst of big requests does not leave the process large for good.
    /// </summary>
    private void ReturnMemorySoon()
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

    /// <summary>Stops accepting, waits for in-flight events (bounded), closes connections and removes the socket.</summary>
    public async Task StopAsync()
    {
        if (_stopping) return;
        _stopping = true;
        _msgPackEvents.Dispose();
        try { _listener.Shutdown(SocketShutdown.Both); } catch { }
        _listener.Dispose();
        // During a `kong reload` a new server may own the path already while this one drains: only the file this
        // server bound is removed (the runtime's own unlink at close hits the temporary name it was bound under)
        SocketFile.RemoveIfOwn(Options.SocketPath, _socketFile, Options.Log);
        var deadline = DateTime.UtcNow + Options.ShutdownTimeout;
        while (InFlightEvents > 0 && DateTime.UtcNow < deadline) await Task.Delay(10).ConfigureAwait(false);
        if (InFlightEvents > 0) Options.Log.Warn($"{InFlightEvents} events still running at shutdown");
        Socket[] open;
        lock (_connLock) open = [.. _connections];
        foreach (var s in open)
        {
            try { s.Shutdown(SocketShutdown.Both); } catch { }
            s.Dispose();
        }
        Registry.Dispose();
        Options.Log.Info("stopped");
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);
}
