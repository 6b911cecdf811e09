using System.Runtime.InteropServices;

namespace Kong.PluginServer.Io;

/// <summary>
/// One I/O thread: an epoll set (level-triggered) of Kong's connections, the listener on the first loop. Each
/// wake-up handles every ready connection: it receives what is there (one recv, more only when the buffer
/// filled), parses every complete frame, lets the PDK replies resume their handlers inline, and sends what
/// the handlers queued. The thread sleeps only when no connection has anything to read, and after serving input
/// it first polls for <see cref="ConnectionHub.SpinTicks"/> (Kong's next frame is often microseconds away).
/// </summary>
internal sealed unsafe class EventLoop : IDisposable
{
    private const int MaxEvents = 256;
    internal const ulong WakeToken = ulong.MaxValue;
    internal const ulong ListenerToken = ulong.MaxValue - 1;

    private readonly ConnectionHub _hub;
    private readonly int _epfd;
    private readonly int _wakeFd;
    private readonly byte* _events;
    private readonly Thread _thread;
    private volatile bool _stop;

    public EventLoop(ConnectionHub hub, int index)
    {
        _hub = hub;
        Index = index;
        _epfd = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epfd < 0) throw new IOException($"epoll_create1 failed: errno {Libc.Errno}");
        _wakeFd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
        if (_wakeFd < 0) throw new IOException($"eventfd failed: errno {Libc.Errno}");
        int err = Libc.Control(_epfd, Libc.EPOLL_CTL_ADD, _wakeFd, Libc.EPOLLIN, WakeToken);
        if (err != 0) throw new IOException($"epoll_ctl failed: errno {err}");
        _events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * Libc.EventSize));
        _thread = new Thread(Run, 256 * 1024) { IsBackground = true, Name = $"kong-io-{index}" };
    }

    public int Index { get; }

    /// <summary>True on this loop's thread.</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    public void Start() => _thread.Start();

    /// <summary>Watches <paramref name="fd"/> for input. 0 or the errno.</summary>
    public int Add(int fd, ulong token) => Libc.Control(_epfd, Libc.EPOLL_CTL_ADD, fd, Libc.EPOLLIN, token);

    public int Modify(int fd, ulong token, bool writable) =>
        Libc.Control(_epfd, Libc.EPOLL_CTL_MOD, fd, writable ? Libc.EPOLLIN | Libc.EPOLLOUT : Libc.EPOLLIN, token);

    public int Remove(int fd) => Libc.Control(_epfd, Libc.EPOLL_CTL_DEL, fd, 0, 0);

    /// <summary>Zero-timeout polls made while spinning (read with Volatile).</summary>
    internal long SpinPolls;

    /// <summary>Sleeping waits entered (read with Volatile).</summary>
    internal long Sleeps;

    private void Run()
    {
        int size = Libc.EventSize, off = Libc.EventDataOffset;
        long spinTicks = _hub.SpinTicks;
        bool served = false;
        while (!_stop)
        {
            int n = served && spinTicks > 0 ? Spin(spinTicks) : 0;
            if (n == 0)
            {
                Sleeps++;
                n = Libc.epoll_wait(_epfd, _events, MaxEvents, _hub.TickMilliseconds);
            }
            served = n > 0;
            if (n < 0)
            {
                int errno = Libc.Errno;
                if (errno == Libc.EINTR) continue;
                _hub.Log.Error($"io loop {Index}: epoll_wait failed: errno {errno}");
                Thread.Sleep(10);
                continue;
            }
            for (int i = 0; i < n; i++)
            {
                byte* e = _events + i * size;
                uint events = *(uint*)e;
                ulong token = *(ulong*)(e + off);
                if (token == WakeToken)
                {
                    ulong drained;
                    Libc.read(_wakeFd, (byte*)&drained, 8);
                    continue;
                }
                if (token == ListenerToken)
                {
                    _hub.AcceptReady();
                    continue;
                }
                var t = _hub.Find(token);
                if (t is null) continue; // closed earlier in this batch
                try { t.OnReady(events); }
                catch (Exception ex) { _hub.OnUnexpected(t, ex); }
            }
            _hub.OnLoopTick(this);
        }
    }

    /// <summary>Polls the epoll set until something is ready or <paramref name="ticks"/> have passed: the count, or 0.</summary>
    private int Spin(long ticks)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + ticks;
        while (true)
        {
            SpinPolls++;
            int n = Libc.epoll_wait(_epfd, _events, MaxEvents, 0);
            if (n != 0) return n; // ready, or an error the caller handles
            if (System.Diagnostics.Stopwatch.GetTimestamp() >= until) return 0;
        }
    }

    /// <summary>Wakes the thread from epoll_wait.</summary>
    public void Wake()
    {
        ulong one = 1;
        Libc.write(_wakeFd, (byte*)&one, 8);
    }

    public void Stop()
    {
        _stop = true;
        Wake();
    }

    public void Join(TimeSpan timeout)
    {
        if (_thread.IsAlive && !IsCurrent) _thread.Join(timeout);
    }

    public void Dispose()
    {
        Stop();
        Join(TimeSpan.FromSeconds(5));
        if (_thread.IsAlive) return; // still inside a handler: leak rather than free memory it may touch
        Libc.close(_wakeFd);
        Libc.close(_epfd);
        NativeMemory.Free(_events);
    }
}

/// <summary>A connection served by an <see cref="EventLoop"/>: a non-blocking socket fd in the loop's epoll set.</summary>
internal sealed unsafe class EpollTransport : Transport
{
    private readonly ConnectionHub _hub;
    private EventLoop _loop = null!;
    private int _fd = -1;
    private ulong _token;
    private int _sent;           // bytes of Output already sent
    private bool _writePending;  // EPOLLOUT armed: Output has unsent bytes
    private bool _shutAfterFlush;

    public EpollTransport(ConnectionHub hub) => _hub = hub;

    public EventLoop Loop => _loop;
    public ulong Token => _token;

    public void Attach(int fd, EventLoop loop, ulong token, int id)
    {
        _fd = fd;
        _loop = loop;
        _token = token;
        Id = id;
        Generation++;
        Closed = false;
        WriteShut = false;
        PartialSince = 0;
        _sent = 0;
        _writePending = false;
        _shutAfterFlush = false;
        Input.Clear();
        Output.Reset();
    }

    /// <summary>Readiness reported by the loop.</summary>
    public void OnReady(uint events)
    {
        lock (Gate)
        {
            if (Closed) return;
            if ((events & Libc.EPOLLOUT) != 0 && _writePending) SendQueued();
            if (!Closed && (events & (Libc.EPOLLIN | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0) Receive();
        }
    }

    private void Receive()
    {
        while (true)
        {
            var free = Input.FreeSegment();
            nint n;
            fixed (byte* p = &free.Array![free.Offset]) n = Libc.recv(_fd, p, (nuint)free.Count, Libc.MSG_DONTWAIT);
            if (n > 0)
            {
                Input.Advance((int)n);
                Handler.OnInput();
                if (Closed) return;
                NotePartial();
                if (n < free.Count) return; // drained: level-triggered epoll reports more input
                continue;
            }
            if (n == 0) { Close(); return; } // EOF: Kong closed the connection
            int errno = Libc.Errno;
            if (errno == Libc.EAGAIN) return;
            if (errno == Libc.EINTR) continue;
            Close();
            return;
        }
    }

    public override bool Flush()
    {
        if (Closed) return false;
        if (_writePending) return true; // EPOLLOUT sends it after what is already waiting
        return SendQueued();
    }

    private bool SendQueued()
    {
        while (_sent < Output.Length)
        {
            nint n;
            fixed (byte* p = &Output.RawBuffer[_sent]) n = Libc.send(_fd, p, (nuint)(Output.Length - _sent), Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
            if (n > 0) { _sent += (int)n; continue; }
            int errno = n < 0 ? Libc.Errno : 0;
            if (errno == Libc.EINTR) continue;
            if (errno == Libc.EAGAIN)
            {
                if (!_writePending)
                {
                    _writePending = true;
                    _loop.Modify(_fd, _token, writable: true);
                }
                return true;
            }
            Close(); // EPIPE, ECONNRESET: Kong is gone
            return false;
        }
        Output.Reset();
        _sent = 0;
        if (_writePending)
        {
            _writePending = false;
            _loop.Modify(_fd, _token, writable: false);
        }
        if (_shutAfterFlush) ShutdownNow();
        return true;
    }

    public override void ShutdownWrite()
    {
        if (Closed || WriteShut) return;
        WriteShut = true;
        if (_writePending) _shutAfterFlush = true;
        else ShutdownNow();
    }

    private void ShutdownNow()
    {
        _shutAfterFlush = false;
        Libc.shutdown(_fd, Libc.SHUT_WR);
    }

    public override void Close()
    {
        if (Closed) return;
        Closed = true;
        Libc.close(_fd); // also leaves the epoll set
        _fd = -1;
        _sent = 0;
        _writePending = false;
        Input.Clear();
        Output.Reset();
        PartialSince = 0;
        _hub.Closed(this);
        Handler.OnClosed();
    }
}
