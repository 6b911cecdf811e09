using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// One MsgPack:1 event. Kong moves one PDK call per RPC and the RPCs of one event may arrive on different
/// connections, so the event lives in a global table (by EventId) and answers whichever RPC is open:
/// HandleEvent or a Step gets the next queued call, or "ret" once the handler is done and nothing is queued.
/// A handler continues on the thread that delivered its reply.
/// </summary>
internal sealed class MsgPackEvent : PdkSession
{
    private readonly record struct Queued(byte[] Callback, PdkReplySink? Sink, bool NoReply);

    private readonly object _lock = new();
    private readonly Queue<Queued> _queue = new();
    private readonly MsgPackPdkCodec _codec = new();
    private readonly OutputBuffer _scratch = new(256);
    private readonly MsgPackEvents _owner;
    private MsgPackConnection? _openConn;
    private uint _openMsgId;
    private bool _stepInFlight;
    private PdkReplySink? _inFlightSink;
    private bool _handlerDone;
    private bool _finished;

    public MsgPackEvent(MsgPackEvents owner, int id, PluginInstance instance, KongPhase phase)
    {
        _owner = owner;
        Id = id;
        Instance = instance;
        BeginEvent(phase);
        Touch();
    }

    public int Id { get; }
    public PluginInstance Instance { get; }
    public long LastActivity;
    public long StartedTimestamp { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public override bool PullsReplies => false;

    private void Touch() => Volatile.Write(ref LastActivity, Environment.TickCount64);

    /// <summary>Starts the handler; the HandleEvent RPC stays open until the first callback or "ret".</summary>
    public void Start(MsgPackConnection conn, uint msgId, ServerLog log)
    {
        lock (_lock) { _openConn = conn; _openMsgId = msgId; }
        ValueTask task;
        try { task = EventRunner.StartAsync(Instance, Phase, this, log); }
        catch (KongAbortedException) { Finish(); return; }
        if (task.IsCompleted) { Observe(task); OnHandlerDone(); }
        else _ = Await(task);
    }

    private async Task Await(ValueTask task)
    {
        try { await task.ConfigureAwait(false); } catch (KongAbortedException) { }
        OnHandlerDone();
    }

    private static void Observe(ValueTask task)
    {
        try { task.GetAwaiter().GetResult(); } catch (KongAbortedException) { }
    }

    public override void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink)
    {
        lock (_lock)
        {
            if (Exited) throw new KongExitedException();
            if (_finished) throw new KongAbortedException("the event is over");
            _scratch.Clear();
            _codec.WriteCall(_scratch, method, args);
            bool noReply = method.Return == PdkReturnKind.NoReply;
            if (noReply) Exited = true;
            _queue.Enqueue(new Queued(_scratch.WrittenSpan.ToArray(), sink, noReply));
            CallCount++;
        }
        Pump();
    }

    public override void Pull(PdkReplySink sink) { }

    /// <summary>Kong's Step: the reply to the call in flight; the RPC stays open for the next callback.</summary>
    public bool Deliver(MsgPackConnection conn, uint msgId, ReadOnlyMemory<byte> data)
    {
        PdkReplySink? sink;
        lock (_lock)
        {
            if (!_stepInFlight || _finished) return false;
            _stepInFlight = false;
            sink = _inFlightSink;
            _inFlightSink = null;
            _openConn = conn;
            _openMsgId = msgId;
        }
        Touch();
        sink?.Complete(_codec, data); // may run the handler on, queueing more calls
        Pump();
        return true;
    }

    private void OnHandlerDone()
    {
        lock (_lock) _handlerDone = true;
        Pump();
    }

    /// <summary>Answers the open RPC if there is something to answer with.</summary>
    private void Pump()
    {
        MsgPackConnection? conn;
        uint msgId;
        byte[]? callback = null;
        bool ret = false, end = false;
        lock (_lock)
        {
            if (_openConn is null || _stepInFlight || _finished) return;
            if (_queue.TryDequeue(out var next))
            {
                callback = next.Callback;
                if (next.NoReply) end = true;
                else { _stepInFlight = true; _inFlightSink = next.Sink; }
            }
            else if (_handlerDone) { ret = true; end = true; }
            else return;
            conn = _openConn;
            msgId = _openMsgId;
            _openConn = null;
            if (end) _finished = true;
        }
        _owner.Server.CountEventWrite();
        conn.RespondStep(msgId, Id, callback);
        if (end) _owner.Remove(this);
        _ = ret;
    }

    /// <summary>Aborts the event when its open RPC was on <paramref name="conn"/>: that connection closed before the answer.</summary>
    public void AbortIfOpenOn(MsgPackConnection conn)
    {
        lock (_lock)
        {
            if (_finished || !ReferenceEquals(_openConn, conn)) return;
        }
        Abort("the connection of its open call closed");
    }

    /// <summary>Drops the event (Kong went away); a waiting handler sees <see cref="KongAbortedException"/>.</summary>
    public void Abort(string reason)
    {
        PdkReplySink? sink;
        lock (_lock)
        {
            if (_finished) return;
            _finished = true;
            sink = _inFlightSink;
            _inFlightSink = null;
            foreach (var q in _queue) q.Sink?.Fail(new KongAbortedException(reason));
            _queue.Clear();
        }
        sink?.Fail(new KongAbortedException(reason));
        _owner.Remove(this);
    }

    private void Finish()
    {
        lock (_lock) _finished = true;
        _owner.Remove(this);
    }
}
