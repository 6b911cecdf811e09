using Kong.PluginServer.Io;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// The process-wide table of MsgPack:1 events by EventId (a dictionary under a lock: no allocation once it has
/// grown), with the event objects reused; events Kong abandoned are expired.
/// </summary>
internal sealed class MsgPackEvents : IDisposable
{
    /// <summary>Kong's cosocket read timeout is 60 s; an event silent for longer is gone.</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromSeconds(90);

    private readonly object _lock = new();
    private readonly Dictionary<int, MsgPackEvent> _events = new();
    private readonly Stack<MsgPackEvent> _free = new();
    private readonly List<MsgPackEvent> _expired = new();
    private readonly IServerCore _server;
    private readonly Timer _sweeper;
    private int _nextId;

    public MsgPackEvents(IServerCore server)
    {
        _server = server;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
    }

    public int Count { get { lock (_lock) return _events.Count; } }

    public IServerCore Server => _server;

    public MsgPackEvent Create(PluginInstance instance, KongPhase phase)
    {
        MsgPackEvent ev;
        lock (_lock)
        {
            int id;
            do id = Interlocked.Increment(ref _nextId) & int.MaxValue;
            while (_events.ContainsKey(id));
            ev = _free.Count > 0 ? _free.Pop() : new MsgPackEvent(this);
            ev.Reset(id, instance, phase);
            _events[id] = ev;
        }
        Interlocked.Increment(ref instance.InFlight);
        _server.EventStarted();
        return ev;
    }

    public bool TryGet(int id, out MsgPackEvent ev)
    {
        lock (_lock) return _events.TryGetValue(id, out ev!);
    }

    /// <summary>The event is over (answered "ret" or an exit, or aborted): out of the table, counted.</summary>
    public void Finish(MsgPackEvent ev)
    {
        bool removed;
        lock (_lock) removed = _events.TryGetValue(ev.Id, out var cur) && ReferenceEquals(cur, ev) && _events.Remove(ev.Id);
        if (!removed) return;
        Interlocked.Decrement(ref ev.Instance.InFlight);
        ev.Instance.Touch();
        _server.EventFinished(ev.StartedTimestamp);
    }

    /// <summary>Over and its handler returned: the object may serve another event.</summary>
    public void Recycle(MsgPackEvent ev)
    {
        lock (_lock)
        {
            if (_free.Count < 1024) _free.Push(ev);
        }
    }

    private void Sweep()
    {
        long now = Environment.TickCount64;
        lock (_lock)
        {
            _expired.Clear();
            foreach (var ev in _events.Values)
                if (now - Volatile.Read(ref ev.LastActivity) > AbandonedAfter.TotalMilliseconds) _expired.Add(ev);
        }
        foreach (var ev in _expired) ev.Abort("no Step from Kong for " + AbandonedAfter.TotalSeconds + " s");
    }

    public void Dispose() => _sweeper.Dispose();
}
