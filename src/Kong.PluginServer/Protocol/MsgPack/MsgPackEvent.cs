using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// One MsgPack:1 event (docs/protocol.md#msgpack-events). Kong moves one PDK call per RPC and the RPCs of one
/// event may arrive on different connections, so the event lives in a process-wide table (by EventId) and
/// answers whichever RPC is open: HandleEvent or a Step gets the next queued call, or "ret" once the handler
/// is done and nothing is queued. A handler continues on the thread that delivered its reply (an event loop's).
/// Calls waiting for an open RPC are kept encoded, back to back, in one buffer. The object is reused.
/// </summary>
internal sealed class MsgPackEvent : PdkSession
{
    private readonly record struct Queued(int Offset, int Length, PdkReplySink? Sink, bool NoReply);

    private readonly object _lock = new();
    private readonly Queue<Queued> _queue = new();
    private readonly MsgPackPdkCodec _codec = new();
    private readonly OutputBuffer _calls = new(512);
    private readonly MsgPackEvents _owner;
    private readonly Action _onHandlerDone;
    private byte[] _answer = new byte[256];   // the callback being answered, copied out of _calls (see Pump)
    private MsgPackConnection? _openConn;
    private int _openGeneration;
    private uint _openMsgId;
    private bool _stepInFlight;
    private PdkReplySink? _inFlightSink;
    private bool _handlerDone;
    private bool _finished;
    private bool _recycled;
    private ValueTask _handler;
    private ServerLog _log = null!;

    public MsgPackEvent(MsgPackEvents owner)
    {
        _owner = owner;
        _onHandlerDone = OnHandlerDone;
    }

    public int Id { get; private set; }
    public PluginInstance Instance { get; private set; } = null!;
    public long LastActivity;
    public long StartedTimestamp { get; private set; }

    public override bool PullsReplies => false;

    public override WireProtocol Protocol => WireProtocol.MsgPack;

    /// <summary>Readies a (reused) event object for a new event.</summary>
    public void Reset(int id, PluginInstance instance, KongPhase phase)
    {
        Id = id;
        Instance = instance;
        StartedTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        _queue.Clear();
        _calls.Reset();
        _openConn = null;
        _stepInFlight = false;
        _inFlightSink = null;
        _handlerDone = false;
        _finished = false;
        _recycled = false;
        _handler = default;
        BeginEvent(phase);
        Touch();
    }

    private void Touch() => Volatile.Write(ref LastActivity, Environment.TickCount64);

    /// <summary>Starts the handler; the HandleEvent RPC stays open until the first callback or "ret".</summary>
    public void Start(MsgPackConnection conn, int generation, uint msgId, ServerLog log)
    {
        _log = log;
        lock (_lock) { _openConn = conn; _openGeneration = generation; _openMsgId = msgId; }
        var task = EventRunner.Start(Instance, Phase, this, log);
        if (task.IsCompleted)
        {
            EventRunner.Observe(task, Instance, Phase, this, log);
            OnHandlerEnded();
            return;
        }
        _handler = task;
        task.GetAwaiter().UnsafeOnCompleted(_onHandlerDone);
    }

    private void OnHandlerDone()
    {
        var task = _handler;
        _handler = default;
        EventRunner.Observe(task, Instance, Phase, this, _log);
        OnHandlerEnded();
    }

    private void OnHandlerEnded()
    {
        lock (_lock) _handlerDone = true;
        Pump();
        RecycleIfDone();
    }

    public override void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink)
    {
        lock (_lock)
        {
            if (Exited) throw new KongExitedException();
            if (_finished) throw new KongAbortedException("the event is over");
            if (_queue.Count == 0) _calls.Clear();
            int at = _calls.Length;
            _codec.WriteCall(_calls, method, args);
            bool noReply = method.Return == PdkReturnKind.NoReply;
            if (noReply) Exited = true;
            _queue.Enqueue(new Queued(at, _calls.Length - at, sink, noReply));
            CallCount++;
        }
        Pump();
    }

    public override void Pull(PdkReplySink sink) =>
        throw new InvalidOperationException("PDK results must be awaited on MsgPack:1");

    /// <summary>Kong's Step: the reply to the call in flight; the RPC stays open for the next callback.</summary>
    public bool Deliver(MsgPackConnection conn, int generation, uint msgId, ReadOnlyMemory<byte> data)
    {
        if (!TakeStep(conn, generation, msgId, out var sink)) return false;
        sink?.Complete(_codec, data); // may run the handler on, queueing more calls
        Pump();
        return true;
    }

    /// <summary>Kong's Step with a reply that cannot be read (larger than --max-frame-bytes): the call in flight fails; the RPC stays open for the handler's next callback.</summary>
    public bool Fail(MsgPackConnection conn, int generation, uint msgId, Exception error)
    {
        if (!TakeStep(conn, generation, msgId, out var sink)) return false;
        sink?.Fail(error); // the handler sees the exception: by default its failure answers 500
        Pump();
        return true;
    }

    private bool TakeStep(MsgPackConnection conn, int generation, uint msgId, out PdkReplySink? sink)
    {
        lock (_lock)
        {
            sink = null;
            if (!_stepInFlight || _finished) return false;
            _stepInFlight = false;
            sink = _inFlightSink;
            _inFlightSink = null;
            _openConn = conn;
            _openGeneration = generation;
            _openMsgId = msgId;
        }
        Touch();
        return true;
    }

    /// <summary>Answers the open RPC if there is something to answer with.</summary>
    private void Pump()
    {
        MsgPackConnection conn;
        int generation;
        uint msgId;
        int length = 0;
        bool end = false;
        lock (_lock)
        {
            if (_openConn is null || _stepInFlight || _finished) return;
            if (_queue.TryDequeue(out var next))
            {
                // copied out: the answer is written outside the lock (a connection's gate is never taken under it),
                // while the handler may queue more calls into _calls
                if (_answer.Length < next.Length) _answer = new byte[Math.Max(next.Length, _answer.Length * 2)];
                _calls.WrittenSpan.Slice(next.Offset, next.Length).CopyTo(_answer);
                length = next.Length;
                if (next.NoReply) end = true;
                else { _stepInFlight = true; _inFlightSink = next.Sink; }
            }
            else if (_handlerDone) end = true;
            else return;
            conn = _openConn;
            generation = _openGeneration;
            msgId = _openMsgId;
            _openConn = null;
            if (end) _finished = true;
        }
        _owner.Server.CountEventWrite();
        bool sent = conn.RespondStep(generation, msgId, Id, _answer.AsSpan(0, length));
        conn.Answered(this, generation);
        if (!sent)
        {
            if (!end) Abort("the connection of its open call closed");
            else _owner.Finish(this);
        }
        else if (end) _owner.Finish(this);
        RecycleIfDone();
    }

    /// <summary>Aborts the event when its open RPC was on that connection: it closed before the answer.</summary>
    public void AbortIfOpenOn(MsgPackConnection conn, int generation)
    {
        lock (_lock)
        {
            if (_finished || !ReferenceEquals(_openConn, conn) || _openGeneration != generation) return;
        }
        Abort("the connection of its open call closed");
    }

    /// <summary>Drops the event (Kong went away); a waiting handler sees <see cref="KongAbortedException"/>.</summary>
    public void Abort(string reason)
    {
        PdkReplySink? sink;
        Queued[]? queued = null;
        lock (_lock)
        {
            if (_finished) return;
            _finished = true;
            _openConn = null;
            sink = _inFlightSink;
            _inFlightSink = null;
            if (_queue.Count > 0) queued = _queue.ToArray();
            _queue.Clear();
        }
        var error = new KongAbortedException(reason);
        if (queued is not null)
            foreach (var q in queued) q.Sink?.Fail(error);
        sink?.Fail(error);
        _owner.Finish(this);
        RecycleIfDone();
    }

    private void RecycleIfDone()
    {
        lock (_lock)
        {
            if (_recycled || !_finished || !_handlerDone) return;
            _recycled = true;
        }
        _owner.Recycle(this);
    }
}
