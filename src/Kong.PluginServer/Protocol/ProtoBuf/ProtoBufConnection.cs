using System.Buffers.Binary;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Io;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>
/// A Kong connection speaking ProtoBuf:1 (docs/protocol.md#protobuf), driven by the event loop: every frame
/// received is either the next command or the reply to the oldest PDK call in flight. During an event it is
/// also the PDK session: calls are queued in the output buffer; when the handler awaits a reply the queue
/// leaves in one write and the handler is suspended; the reply frame resumes it inline on the loop's
/// thread. When the handler returns, the last setters, the end-of-event frame and the RpcReturn leave
/// together (docs/protocol.md#pipelining): two socket round trips for gitlab-ci-auth's event.
/// The object (buffers, codec, PDK facade) is reused for later connections.
/// </summary>
internal sealed class ProtoBufConnection : PdkSession, IConnectionHandler
{
    private enum Mode { Commands, Event, Discard }

    private readonly IServerCore _server;
    private readonly Transport _io;
    private readonly ProtoBufPdkCodec _codec = new();
    private readonly Queue<PdkReplySink?> _awaiting = new();
    private readonly Action _onHandlerDone;
    private Mode _mode;
    private bool _eventRunning;   // between HandleEvent and the handler's end (also after a close)
    private bool _released;       // handed back to the hub's pool
    private ValueTask _handler;
    private PluginInstance? _instance;
    private long _sequence;
    private long _eventStarted;
    private long _skip;           // bytes of an oversized frame still to discard
    private bool _skipIsReply;

    public ProtoBufConnection(IServerCore server, Transport io)
    {
        _server = server;
        _io = io;
        _onHandlerDone = OnHandlerDone;
    }

    public override bool PullsReplies => false;

    private ServerLog Log => _server.Log;

    public override WireProtocol Protocol => WireProtocol.ProtoBuf;
    private int MaxFrame => _server.MaxFrameBytes;

    public void OnAttached()
    {
        _mode = _server.Refusing ? Mode.Discard : Mode.Commands;
        _eventRunning = false;
        _released = false;
        _awaiting.Clear();
        _skip = 0;
        if (_mode == Mode.Discard) _io.ShutdownWrite();
    }

    // ------------------------------------------------------------------ input

    public void OnInput()
    {
        var input = _io.Input;
        try
        {
            while (!_io.Closed)
            {
                if (_mode == Mode.Discard) { input.Clear(); return; }
                if (_skip > 0)
                {
                    int n = (int)Math.Min(_skip, input.Length);
                    input.Consume(n);
                    _skip -= n;
                    if (_skip > 0) return;
                    OversizedFrameSkipped();
                    continue;
                }
                if (input.Length < 4) return;
                uint len = BinaryPrimitives.ReadUInt32LittleEndian(input.Span);
                if (len > (uint)MaxFrame)
                {
                    // read and dropped, never buffered: Kong's sends complete, so closing afterwards cannot break an assert on its side
                    input.Consume(4);
                    _skip = len;
                    _skipIsReply = _awaiting.Count > 0;
                    if (_skipIsReply) Log.Warn($"connection {_io.Id}: a PDK reply of {len} bytes exceeds --max-frame-bytes {MaxFrame}; discarding it");
                    else Log.Warn($"connection {_io.Id}: a frame of {len} bytes exceeds --max-frame-bytes {MaxFrame}; discarding it, then closing");
                    continue;
                }
                int total = 4 + (int)len;
                if (input.Length < total)
                {
                    input.Reserve(total); // the rest is received in place: the frame is parsed once, when complete
                    return;
                }
                var frame = input.Slice(4, (int)len);
                input.Consume(total); // the bytes stay valid until the next receive, after this call
                OnFrame(frame);
                if (total > InputBuffer.RetainedBytes && input.ReleaseIfLarge()) _server.ReturnMemorySoon();
            }
        }
        catch (ProtocolViolationException e) { Close(LogLevel.Warn, $"closing: {e.Message}"); }
        catch (KongAbortedException e) { Close(LogLevel.Debug, e.Message); }
        catch (ConfigException e) { Close(LogLevel.Error, $"instance refused: {e.Message}"); }
        catch (Exception e) { Close(LogLevel.Error, $"closing after an unexpected error: {e}"); }
    }

    private void Close(LogLevel level, string message)
    {
        Log.Write(level, $"connection {_io.Id}: {message}");
        _io.Close();
    }

    private void OversizedFrameSkipped()
    {
        if (_skipIsReply && _awaiting.Count > 0)
        {
            var sink = _awaiting.Dequeue();
            sink?.Fail(new ProtocolViolationException($"the reply exceeds --max-frame-bytes {MaxFrame}"));
            return;
        }
        _io.Close(); // a command we cannot read: Kong's read fails ("closed")
    }

    private void OnFrame(ReadOnlyMemory<byte> frame)
    {
        if (_awaiting.Count > 0)
        {
            var sink = _awaiting.Dequeue();
            sink?.Complete(_codec, frame); // may resume the handler here, which queues, awaits or ends the event
            return;
        }
        if (_eventRunning) throw new ProtocolViolationException("a frame arrived while no reply was expected");
        Dispatch(frame.Span);
    }

    private void Dispatch(ReadOnlySpan<byte> frame)
    {
        var cmd = RpcCodec.DecodeCall(frame);
        var registry = _server.Registry;
        switch (cmd.Kind)
        {
            case RpcCommandKind.HandleEvent:
                HandleEvent(cmd.Sequence, cmd.InstanceId, KongPhases.Parse(cmd.Name));
                return;

            case RpcCommandKind.StartInstance:
            {
                if (_server.Refusing)
                {
                    // no new instance on a stopping server, and no answer that could make Kong loop: it reads EOF
                    // ("closed"), releases its claim and fails this request (docs/protocol.md#server-lifecycle)
                    Log.Info($"connection {_io.Id}: stopping; no new instance starts");
                    Refuse();
                    return;
                }
                // a plugin this server does not serve, like a bad config, is refused by closing without a reply:
                // Kong raises a 500 for the request (docs/protocol.md#protobuf-errors)
                if (!_server.TryGetPlugin(cmd.Name, out var plugin))
                {
                    string name = System.Text.Encoding.UTF8.GetString(cmd.Name);
                    Log.Limited(LogLevel.Error, $"connection {_io.Id}: StartInstance for plugin '{name}', which this server does not serve (it serves {_server.PluginNameList}); closing",
                        "unknown plugin");
                    _io.Close();
                    return;
                }
                var inst = registry.Start(plugin, cmd.Config);
                Log.Info($"instance {inst.Id} of {plugin.Info.Name} started");
                RpcCodec.WriteInstanceStatus(_io.Output, cmd.Sequence, plugin.Info.Name, inst.Id, inst.StartedAt);
                _io.Flush();
                return;
            }

            case RpcCommandKind.CloseInstance:
            case RpcCommandKind.GetInstanceStatus:
            {
                int id = cmd.InstanceId;
                bool known = registry.TryGet(id, out var inst);
                if (cmd.Kind == RpcCommandKind.CloseInstance && known) registry.Close(id);
                if (!known) Log.Info($"status/close for unknown instance {id}");
                RpcCodec.WriteInstanceStatus(_io.Output, cmd.Sequence, known ? inst.Plugin.Info.Name : _server.Plugin.Info.Name, id, known ? inst.StartedAt : 0);
                _io.Flush();
                return;
            }

            default: // GetPluginNames / GetPluginInfo: Kong never sends them; answer like the Go server
                _io.Output.WriteFrame(ReadOnlySpan<byte>.Empty);
                _io.Flush();
                return;
        }
    }

    /// <summary>Answers nothing more on this connection: Kong reads EOF; what it still sends is read and dropped until it closes.</summary>
    private void Refuse()
    {
        _mode = Mode.Discard;
        _io.Input.Clear();
        _io.ShutdownWrite();
    }

    // ------------------------------------------------------------------ events

    private void HandleEvent(long sequence, int instanceId, KongPhase phase)
    {
        // unknown instance or event: close before doing anything, so Kong's replay has no side effects
        if (!_server.Registry.TryGet(instanceId, out var instance))
        {
            Log.Info($"connection {_io.Id}: no plugin instance {instanceId}; closing so that Kong restarts it");
            _io.Close();
            return;
        }
        if (phase == KongPhase.None)
            throw new ProtocolViolationException("unknown event name");
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        _server.EventStarted(); // counted before the stop check: shutdown waits for every event it lets start
        if (_server.Refusing)
        {
            _server.EventRefused();
            Log.Info($"connection {_io.Id}: stopping; no new event starts");
            Refuse();
            return;
        }

        instance.Touch();
        Interlocked.Increment(ref instance.InFlight);
        _instance = instance;
        _sequence = sequence;
        _eventStarted = started;
        _eventRunning = true;
        _mode = Mode.Event;
        BeginEvent(phase);
        if ((instance.Plugin.Info.Phases & phase) == 0)
        {
            EndEvent();
            return;
        }
        var task = EventRunner.Start(instance, phase, this, Log);
        if (task.IsCompleted)
        {
            Finish(task);
            return;
        }
        // the handler awaits a PDK reply (its calls are flushed) or something else (it continues elsewhere)
        _handler = task;
        task.GetAwaiter().UnsafeOnCompleted(_onHandlerDone);
    }

    private void OnHandlerDone()
    {
        lock (_io.Gate)
        {
            var task = _handler;
            _handler = default;
            Finish(task);
        }
    }

    private void Finish(ValueTask task)
    {
        EventRunner.Observe(task, _instance!, Phase, this, Log);
        EndEvent();
    }

    private void EndEvent()
    {
        _eventRunning = false;
        var instance = _instance!;
        _instance = null;
        Interlocked.Decrement(ref instance.InFlight);
        instance.Touch();
        _server.EventFinished(_eventStarted);

        if (_io.Closed)
        {
            FailAwaiting(null);
            ReturnToPool();
            return;
        }
        _mode = Mode.Commands;
        if (Exited)
        {
            // Kong never answers kong.response.exit nor reads anything after it; it closes the connection
            _server.CountEventWrite();
            _io.Flush();
            _awaiting.Clear();
            _mode = Mode.Discard;
            _io.Input.Clear();
            return;
        }
        _io.Output.WriteFrame(ReadOnlySpan<byte>.Empty);  // end of PDK steps
        RpcCodec.WriteReturn(_io.Output, _sequence);
        _server.CountEventWrite();
        _io.Flush();
        // the replies of the setters in that write come before Kong's next command; read in order, dropped
        if (_server.Refusing && !_io.Closed) Drain();
    }

    /// <summary>
    /// While stopping: a connection idle in Kong's pool is released. Our write side is shut, so nginx sees EOF and drops
    /// it from the pool; if Kong takes it first, its sends still succeed and its read fails with "closed", a clean
    /// failure (a replay, or a released instance claim). Gate held.
    /// </summary>
    public void Drain()
    {
        if (_io.Closed || _eventRunning || _mode == Mode.Discard) return;
        FailAwaiting(null);
        Refuse();
    }

    public void OnClosed()
    {
        FailAwaiting(new KongAbortedException("connection closed while a PDK reply was expected"));
        ReturnToPool();
    }

    private void FailAwaiting(Exception? error)
    {
        while (_awaiting.TryDequeue(out var sink))
        {
            if (sink is null) continue;
            sink.Fail(error ?? new KongAbortedException("the event is over"));
        }
    }

    /// <summary>Back to the hub's pool, once closed and no handler can touch this object any more.</summary>
    private void ReturnToPool()
    {
        if (_released || _eventRunning || !_io.Closed) return;
        _released = true;
        _server.Hub.Recycle(_io);
    }

    // ------------------------------------------------------------------ PDK session

    public override void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink)
    {
        lock (_io.Gate)
        {
            if (_io.Closed) throw new KongAbortedException("connection closed");
            if (Exited) throw new KongExitedException();
            if (!_eventRunning) throw new KongAbortedException("the event is over");
            _codec.WriteCall(_io.Output, method, args);
            CallCount++;
            if (method.Return == PdkReturnKind.NoReply) { Exited = true; return; }
            _awaiting.Enqueue(sink);
        }
    }

    /// <summary>The handler suspended on <paramref name="sink"/>: the queued calls leave in one write; its reply resumes the handler.</summary>
    public override void Awaited(PdkReplySink sink)
    {
        lock (_io.Gate)
        {
            if (sink.IsCompleted || _io.Closed || _io.Output.Length == 0) return;
            _server.CountEventWrite();
            _io.Flush();
        }
    }

    public override void Pull(PdkReplySink sink) =>
        throw new InvalidOperationException("PDK results must be awaited: the connection is served by an event loop");

    public void Dispose()
    {
        _io.Input.Dispose();
        _io.Output.Dispose();
    }
}
