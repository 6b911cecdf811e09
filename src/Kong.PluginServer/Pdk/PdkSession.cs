
namespace Kong.PluginServer.Pdk;

/// <summary>Raised by a PDK call made after kong.response.exit: the event is over.</summary>
public sealed class KongExitedException() : OperationCanceledException("kong.response.exit was called: the event is over");

/// <summary>Raised when Kong abandoned the event (it closed the connection or raised inside a PDK call).</summary>
public sealed class KongAbortedException(string reason) : OperationCanceledException("Kong abandoned the event: " + reason);

/// <summary>Receives the reply of one PDK call.</summary>
internal abstract class PdkReplySink
{
    public abstract bool IsCompleted { get; }
    public abstract void Complete(PdkCodec codec, ReadOnlyMemory<byte> reply);
    public abstract void Fail(Exception error);
}

/// <summary>
/// The PDK side of one event: queues calls, moves them to Kong and hands replies back. ProtoBuf:1
/// queues and pipelines (a reply is pulled only when the handler awaits it); MsgPack:1 moves one call
/// per Kong RPC. Plugins never see this type; they use <see cref="KongPdk"/>.
/// </summary>
internal abstract class PdkSession
{
    private byte[] _arena = new byte[1024];
    private int _arenaUsed;

    protected PdkSession() => Kong = new KongPdk(this);

    /// <summary>The PDK facade handed to the plugin, one per session and reused across its events.</summary>
    public KongPdk Kong { get; }

    public KongPhase Phase { get; protected set; }

    /// <summary>The wire protocol this session speaks.</summary>
    public abstract WireProtocol Protocol { get; }

    /// <summary>The scope of the instance the current event runs for (set before the handler is called).</summary>
    public InstanceScope Scope { get; internal set; } = InstanceScope.None;

    /// <summary>True once kong.response.exit was sent: nothing more may be sent for this event.</summary>
    public bool Exited { get; protected set; }

    /// <summary>
    /// Results of the current event's PDK calls handed to the plugin and not yet taken (awaited): a plugin awaits each
    /// once, so this is 0 when its handler returns, unless it dropped one (the event runner reports it).
    /// </summary>
    internal int UnawaitedResults;

    /// <summary>PDK calls made in the current event (round trips unless pipelined).</summary>
    public int CallCount { get; protected set; }

    /// <summary>
    /// True when a reply is pulled synchronously by the thread that needs it (<see cref="Pull"/>), as in-memory sessions
    /// do. Sessions served by the event loop return false: an awaited call suspends the handler, and its reply resumes it.
    /// </summary>
    public abstract bool PullsReplies { get; }

    /// <summary>Queues a call; <paramref name="sink"/> null discards the reply.</summary>
    public abstract void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink);

    /// <summary>Blocks until <paramref name="sink"/> has its reply (only when <see cref="PullsReplies"/>).</summary>
    public abstract void Pull(PdkReplySink sink);

    /// <summary>Pulling sessions: true when the calling thread may pull a reply itself.</summary>
    public virtual bool CanPullOnCurrentThread => true;

    /// <summary>
    /// A handler suspended on <paramref name="sink"/> (its continuation is registered). Pulling sessions pull the reply;
    /// event-loop sessions send the queued calls, and the reply resumes the handler.
    /// </summary>
    public virtual void Awaited(PdkReplySink sink)
    {
        if (PullsReplies) Pull(sink);
    }

    protected void BeginEvent(KongPhase phase)
    {
        Phase = phase;
        Exited = false;
        CallCount = 0;
        UnawaitedResults = 0;
        _arenaUsed = 0;
    }

    /// <summary>Copies bytes into per-event scratch memory that stays valid until the event ends.</summary>
    public ReadOnlyMemory<byte> Keep(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return ReadOnlyMemory<byte>.Empty;
        if (_arenaUsed + bytes.Length > _arena.Length)
        {
            // earlier slices keep pointing at the old array, so a new one is started rather than grown
            _arena = new byte[Math.Max(_arena.Length * 2, bytes.Length)];
            _arenaUsed = 0;
        }
        var mem = _arena.AsMemory(_arenaUsed, bytes.Length);
        bytes.CopyTo(mem.Span);
        _arenaUsed += bytes.Length;
        return mem;
    }
}
