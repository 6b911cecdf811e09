using System.Collections.Concurrent;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>The process-wide table of MsgPack:1 events by EventId; events Kong abandoned are expired.</summary>
internal sealed class MsgPackEvents : IDisposable
{
    /// <summary>Kong's cosocket read timeout is 60 s; an event silent for longer is gone.</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromSeconds(90);

    private readonly ConcurrentDictionary<int, MsgPackEvent> _events = new();
    private readonly KongPluginServer _server;
    private readonly Timer _sweeper;
    private int _nextId;

    public MsgPackEvents(KongPluginServer server)
    {
        _server = server;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
    }

    public int Count => _events.Count;

    public KongPluginServer Server => _server;

    public MsgPackEvent Create(PluginInstance instance, Kong.PluginServer.Plugins.KongPhase phase)
    {
        int id = Interlocked.Increment(ref _nextId) & int.MaxValue;
        var ev = new MsgPackEvent(this, id, instance, phase);
        _events[id] = ev;
        Interlocked.Increment(ref instance.InFlight);
        _server.EventStarted();
        return ev;
    }

    public bool TryGet(int id, out MsgPackEvent ev) => _events.TryGetValue(id, out ev!);

    public void Remove(MsgPackEvent ev)
    {
        if (_events.TryRemove(ev.Id, out _))
        {
            Interlocked.Decrement(ref ev.Instance.InFlight);
            ev.Instance.Touch();
            _server.EventFinished(ev.StartedTimestamp);
        }
    }

    /// <summary>Aborts the events whose open RPC (HandleEvent or Step not answered yet) was on <paramref name="conn"/>, now closed.</summary>
    public void AbortOpenOn(MsgPackConnection conn)
    {
        foreach (var ev in _events.Values) ev.AbortIfOpenOn(conn);
    }

    private void Sweep()
    {
        long now = Environment.TickCount64;
        foreach (var ev in _events.Values)
            if (now - Volatile.Read(ref ev.LastActivity) > AbandonedAfter.TotalMilliseconds)
                ev.Abort("no Step from Kong for " + AbandonedAfter.TotalSeconds + " s");
    }

    public void Dispose() => _sweeper.Dispose();
}
