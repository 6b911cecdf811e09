using System.Threading.Tasks.Sources;

namespace Kong.PluginServer.Pdk;

/// <summary>Turns a raw reply into the method's result type.</summary>
internal delegate T ReplyDecoder<T>(PdkCodec codec, ReadOnlyMemory<byte> reply, PdkSession session);

/// <summary>
/// The result of a PDK call that has been queued but perhaps not yet sent. Awaiting it suspends the handler
/// and tells the session (ProtoBuf:1: the queued calls leave in one write); the reply completes it and the
/// handler continues on the thread that delivered the reply (the event loop's). In-memory pulling sessions
/// read the reply synchronously instead. Pooled per thread: no allocation per call.
/// </summary>
internal sealed class PendingCall<T> : PdkReplySink, IValueTaskSource<T>
{
    [ThreadStatic] private static PendingCall<T>? t_free;
    [ThreadStatic] private static int t_freeCount;

    /// <summary>
    /// An event loop has the calls of every event it serves in flight at once (Kong's workers keep dozens of requests
    /// in flight each): a smaller pool empties and refills under load, allocating a call object per call.
    /// </summary>
    private const int MaxPooledPerThread = 1024;

    private ManualResetValueTaskSourceCore<T> _core;
    private PdkSession _session = null!;
    private ReplyDecoder<T> _decode = null!;
    private PendingCall<T>? _next;
    private bool _completed;

    public static PendingCall<T> Rent(PdkSession session, ReplyDecoder<T> decode)
    {
        var p = t_free;
        if (p is not null) { t_free = p._next; t_freeCount--; p._next = null; }
        else p = new PendingCall<T>();
        p._session = session;
        p._decode = decode;
        p._completed = false;
        return p;
    }

    public ValueTask<T> Task => new(this, _core.Version);

    public override bool IsCompleted => _completed;

    public override void Complete(PdkCodec codec, ReadOnlyMemory<byte> reply)
    {
        T value;
        try { value = _decode(codec, reply, _session); }
        catch (Exception e) { _completed = true; _core.SetException(e); return; }
        _completed = true;
        _core.SetResult(value);
    }

    public override void Fail(Exception error)
    {
        if (_completed) return;
        _completed = true;
        _core.SetException(error);
    }

    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        if (!_completed && _session.PullsReplies && _session.CanPullOnCurrentThread) _session.Pull(this);
        return _core.GetStatus(token);
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        var session = _session; // the continuation may run (and recycle this) inside _core.OnCompleted
        bool pending = !_completed;
        _core.OnCompleted(continuation, state, token, flags);
        if (pending) session.Awaited(this);
    }

    public T GetResult(short token)
    {
        CheckToken(token);
        _session.UnawaitedResults--;
        if (!_completed && _session.PullsReplies) _session.Pull(this);
        try { return _core.GetResult(token); }
        finally { Recycle(); }
    }

    /// <summary>
    /// A PDK call's ValueTask is awaited once: its result is taken and the call object goes back to the pool (its
    /// version moves on), so a second await, or <c>.Result</c> after an await, holds a stale token.
    /// </summary>
    private void CheckToken(short token)
    {
        if (token != _core.Version) throw AwaitedTwice();
    }

    private static InvalidOperationException AwaitedTwice() => new(
        $"a PDK call's ValueTask<{typeof(T).Name}> was awaited (or its result read) twice: PDK results are pooled and " +
        "may be consumed once; keep the awaited value in a variable, or call .AsTask() / .Preserve() first to await it again");

    private void Recycle()
    {
        _core.Reset();
        _session = null!;
        _decode = null!;
        if (t_freeCount < MaxPooledPerThread) { _next = t_free; t_free = this; t_freeCount++; }
    }
}
