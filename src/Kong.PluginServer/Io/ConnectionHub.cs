using System.Net.Sockets;

namespace Kong.PluginServer.Io;

/// <summary>
/// The server's connections: the event loops (one per core by default), the listener (on the first loop),
/// a table that turns an epoll token back into its connection, and reusable connection objects (Kong opens
/// a new connection after every kong.response.exit, so accepting must stay cheap).
/// </summary>
internal sealed class ConnectionHub : IDisposable
{
    private readonly IServerCore _server;
    private readonly Func<Transport, IConnectionHandler> _newHandler;
    private readonly EventLoop[] _loops;
    private readonly object _lock = new();
    private readonly Stack<EpollTransport> _free = new();
    private EpollTransport?[] _slots = new EpollTransport?[64];
    private int[] _slotGeneration = new int[64];
    private readonly Stack<int> _freeSlots = new();
    private int _slotCount;
    private int _open;
    private int _nextLoop;
    private int _nextId;
    private Socket? _listener;
    private int _listenerFd = -1;
    private bool _listenerPaused;
    private long _lastSweep = Environment.TickCount64;

    public ConnectionHub(IServerCore server, int loops, TimeSpan spin, Func<Transport, IConnectionHandler> newHandler)
    {
        _server = server;
        _newHandler = newHandler;
        SpinTicks = (long)(spin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        _loops = new EventLoop[Math.Max(1, loops)];
        for (int i = 0; i < _loops.Length; i++) _loops[i] = new EventLoop(this, i);
    }

    public ServerLog Log => _server.Log;

    public int LoopCount => _loops.Length;

    /// <summary>How long a loop may sleep without input: the mid-frame idle bound is checked this often.</summary>
    public int TickMilliseconds { get; } = 250;

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>How long a loop that just served input polls before it sleeps (Stopwatch ticks; 0: it sleeps at once).</summary>
    public long SpinTicks { get; }

    /// <summary>Polls made while spinning and sleeping waits entered, summed over the loops (tests, diagnostics).</summary>
    public (long Polls, long Sleeps) SpinCounts
    {
        get
        {
            long polls = 0, sleeps = 0;
            foreach (var l in _loops) { polls += Volatile.Read(ref l.SpinPolls); sleeps += Volatile.Read(ref l.Sleeps); }
            return (polls, sleeps);
        }
    }


    public void Start(Socket listener)
    {
        _listener = listener;
        listener.Blocking = false;
        _listenerFd = (int)listener.SafeHandle.DangerousGetHandle();
        int err = _loops[0].Add(_listenerFd, EventLoop.ListenerToken);
        if (err != 0) throw new IOException($"epoll_ctl on the listener failed: errno {err}");
        foreach (var l in _loops) l.Start();
    }

    /// <summary>Stops watching the listener (before it is closed).</summary>
    public void StopAccepting()
    {
        lock (_lock)
        {
            if (_listenerFd < 0) return;
            _loops[0].Remove(_listenerFd);
            _listenerFd = -1;
        }
    }

    /// <summary>The listener is readable: accepts every waiting connection (first loop's thread).</summary>
    public unsafe void AcceptReady()
    {
        int lfd = Volatile.Read(ref _listenerFd);
        if (lfd < 0) return;
        for (int i = 0; i < 64; i++)
        {
            int fd = Libc.accept4(lfd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
            if (fd < 0)
            {
                int errno = Libc.Errno;
                if (errno == Libc.EAGAIN) return;
                if (errno is Libc.EINTR or Libc.ECONNABORTED) continue;
                // out of descriptors or memory: stop watching the listener until the next tick instead of spinning
                Log.Warn($"accept failed: errno {errno}");
                PauseListener();
                return;
            }
            Adopt(fd);
        }
    }

    private void PauseListener()
    {
        lock (_lock)
        {
            if (_listenerFd < 0 || _listenerPaused) return;
            _loops[0].Remove(_listenerFd);
            _listenerPaused = true;
        }
    }

    private void ResumeListener()
    {
        lock (_lock)
        {
            if (_listenerFd < 0 || !_listenerPaused) return;
            _listenerPaused = false;
            _loops[0].Add(_listenerFd, EventLoop.ListenerToken);
        }
    }

    private void Adopt(int fd)
    {
        EpollTransport t;
        ulong token;
        EventLoop loop;
        int id;
        lock (_lock)
        {
            if (_server.Stopping || _open >= _server.MaxConnections)
            {
                if (!_server.Stopping) _server.LogConnectionLimit();
                Libc.close(fd);
                return;
            }
            _open++;
            t = _free.Count > 0 ? _free.Pop() : NewTransport();
            int slot;
            if (_freeSlots.Count > 0) slot = _freeSlots.Pop();
            else
            {
                if (_slotCount == _slots.Length)
                {
                    Array.Resize(ref _slots, _slots.Length * 2);
                    Array.Resize(ref _slotGeneration, _slotGeneration.Length * 2);
                }
                slot = _slotCount++;
            }
            int gen = ++_slotGeneration[slot];
            token = (uint)slot | ((ulong)(uint)gen << 32);
            loop = _loops[_nextLoop++ % _loops.Length];
            id = ++_nextId;
            lock (t.Gate)
            {
                t.Attach(fd, loop, token, id);
                t.Handler.OnAttached();
            }
            Volatile.Write(ref _slots[slot], t);
        }
        int err = loop.Add(fd, token);
        if (err != 0)
        {
            Log.Warn($"connection {id}: epoll_ctl failed: errno {err}");
            lock (t.Gate) t.Close();
        }
    }

    private EpollTransport NewTransport()
    {
        var t = new EpollTransport(this);
        t.Handler = _newHandler(t);
        return t;
    }

    /// <summary>The connection an epoll token names, or null when it closed since.</summary>
    public EpollTransport? Find(ulong token)
    {
        int slot = (int)(uint)token;
        var slots = Volatile.Read(ref _slots);
        if (slot >= slots.Length) return null;
        var t = Volatile.Read(ref slots[slot]);
        return t is not null && t.Token == token ? t : null;
    }

    /// <summary>A transport closed (gate held): its slot is free; its object returns to the pool once its handler lets it go (<see cref="Recycle"/>).</summary>
    internal void Closed(EpollTransport t)
    {
        lock (_lock)
        {
            int slot = (int)(uint)t.Token;
            if (slot < _slotCount && ReferenceEquals(_slots[slot], t))
            {
                _slots[slot] = null;
                _freeSlots.Push(slot);
                _open--;
            }
        }
        _server.ConnectionClosed();
    }

    /// <summary>The handler is done with a closed connection object: it may serve the next connection.</summary>
    internal void Recycle(Transport t)
    {
        if (t is not EpollTransport e) return;
        lock (_lock)
        {
            if (_free.Count < 256) _free.Push(e);
            else
            {
                e.Input.Dispose();
                e.Output.Dispose();
            }
        }
    }

    /// <summary>Every open connection (for draining and the stop).</summary>
    public List<EpollTransport> Snapshot()
    {
        var list = new List<EpollTransport>();
        lock (_lock)
        {
            for (int i = 0; i < _slotCount; i++)
                if (_slots[i] is { } t) list.Add(t);
        }
        return list;
    }

    internal void OnUnexpected(EpollTransport t, Exception e)
    {
        Log.Error($"connection {t.Id}: closing after an unexpected error: {e}");
        lock (t.Gate) t.Close();
    }

    /// <summary>After each wake-up of a loop: the first loop checks, at most every tick, for connections idle in the middle of a frame.</summary>
    internal void OnLoopTick(EventLoop loop)
    {
        if (loop.Index != 0) return;
        long now = Environment.TickCount64;
        if (now - _lastSweep < TickMilliseconds) return;
        _lastSweep = now;
        ResumeListener();
        long bound = (long)_server.FrameIdleTimeout.TotalMilliseconds;
        if (bound <= 0) return;
        EpollTransport?[] slots;
        int count;
        lock (_lock) { slots = _slots; count = _slotCount; }
        for (int i = 0; i < count; i++)
        {
            var t = Volatile.Read(ref slots[i]);
            if (t is null) continue;
            long since = Volatile.Read(ref t.PartialSince);
            if (since == 0 || now - since < bound) continue;
            lock (t.Gate)
            {
                if (t.Closed || t.PartialSince == 0 || now - t.PartialSince < bound) continue;
                Log.Warn($"connection {t.Id}: closing: idle for {bound / 1000.0:0.#} s in the middle of a frame");
                t.Close();
            }
        }
    }

    public void Dispose()
    {
        StopAccepting();
        foreach (var l in _loops) l.Stop();
        foreach (var l in _loops) l.Join(TimeSpan.FromSeconds(5));
        foreach (var t in Snapshot())
            lock (t.Gate) t.Close();
        foreach (var l in _loops) l.Dispose();
    }
}
