using Kong.PluginServer.Framing;
using Kong.PluginServer.Io;
using Kong.PluginServer.Plugins;
using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// One Kong connection speaking MsgPack:1 (msgpack-rpc, docs/protocol.md#msgpack), driven by the event loop:
/// requests <c>[0, msgid, method, params]</c> are delimited by a resumable scan (no length prefix), decoded in
/// place (method names and keys compared as bytes: no strings, no dictionaries) and answered with
/// <c>[1, msgid, error, result]</c> written straight into the output buffer. Kong sends one request per pooled
/// checkout, so the answer to a HandleEvent or Step may come later, from whichever thread runs the event on.
/// </summary>
internal sealed class MsgPackConnection : IConnectionHandler
{
    private readonly Transport _io;
    private readonly IServerCore _server;
    private readonly MsgPackEvents _events;
    private readonly MsgPackScanner _scanner = new();
    private bool _discarding;      // an oversized message is being passed over
    private readonly OversizedRequest _oversized = new(); // what is known of it
    private bool _refusing;        // draining: input is dropped until Kong closes
    private MsgPackEvent? _open;   // the event whose HandleEvent/Step is unanswered on this connection

    public MsgPackConnection(Transport io, IServerCore server, MsgPackEvents events)
    {
        _io = io;
        _server = server;
        _events = events;
    }

    public Transport Transport => _io;

    /// <summary>Which connection of the reused object an answer is for (see <see cref="Transport.Generation"/>).</summary>
    public int Generation => _io.Generation;

    private ServerLog Log => _server.Log;
    private int MaxMessage => _server.MaxFrameBytes;

    public void OnAttached()
    {
        _scanner.Reset();
        _discarding = false;
        _refusing = false;
        _open = null;
    }

    public void OnInput()
    {
        var input = _io.Input;
        try
        {
            while (!_io.Closed)
            {
                if (_refusing) { input.Clear(); return; }
                if (input.Length == 0) return;
                long length = _scanner.Scan(input.Span);
                if (length < 0)
                {
                    long known = _scanner.KnownLength;
                    if (!_discarding && known > MaxMessage)
                    {
                        _discarding = true;
                        BeginOversized(input.Slice(0, _scanner.ScannedUnconsumed), $"at least {known}");
                    }
                    if (_discarding)
                    {
                        // scanned bytes are dropped at once: nothing of the message is buffered
                        int scanned = _scanner.ScannedUnconsumed;
                        _oversized.Pass(input.Span[..scanned]);
                        input.Consume(scanned);
                        _scanner.Rebase(scanned);
                    }
                    else if (known > input.Length) input.Reserve((int)known); // received in place, scanned once
                    return;
                }
                if (_discarding || length > MaxMessage)
                {
                    if (!_discarding) BeginOversized(input.Slice(0, (int)length), length.ToString()); // it arrived whole: the limit holds all the same
                    _oversized.Pass(input.Span[.._scanner.ScannedUnconsumed]);
                    input.Consume(_scanner.ScannedUnconsumed);
                    _scanner.Reset();
                    _discarding = false;
                    _oversized.End();
                    AnswerOversized();
                    continue;
                }
                var message = input.Slice(0, (int)length);
                input.Consume((int)length);
                _scanner.Reset();
                Dispatch(message);
                if (length > InputBuffer.RetainedBytes && input.ReleaseIfLarge()) _server.ReturnMemorySoon();
            }
        }
        catch (ProtocolViolationException e) { Close(LogLevel.Warn, $"closing: {e.Message}"); }
        catch (MessagePackSerializationException e) { Close(LogLevel.Warn, $"closing: malformed msgpack: {e.Message}"); }
        catch (EndOfStreamException) { Close(LogLevel.Warn, "closing: malformed msgpack: a value is cut short"); }
        catch (Exception e) { Close(LogLevel.Error, $"closing after an unexpected error: {e}"); }
    }

    /// <summary>A message over the limit starts: what its first bytes say is kept, the rest is passed over.</summary>
    private void BeginOversized(ReadOnlyMemory<byte> first, string size)
    {
        _oversized.Begin(first);
        Log.Warn($"connection {_io.Id}: a message of {size} bytes exceeds --max-frame-bytes {MaxMessage}; discarding it");
    }

    /// <summary>
    /// An oversized request was passed over. A Step (a PDK result too large to read) fails the handler's call, as on
    /// ProtoBuf:1: its plugin answers (by default a 500 exit), and the request never goes through. Another request gets
    /// an error; one that is not even a request closes the connection.
    /// </summary>
    private void AnswerOversized()
    {
        if (_oversized.MsgId is not { } msgId) { Close(LogLevel.Warn, "closing: an oversized message that is not a request"); return; }
        string why = $"the message exceeds --max-frame-bytes {MaxMessage}";
        if (!_oversized.IsStep) { RespondError(msgId, why); return; }
        long eventId = _oversized.EventId;
        if (eventId is >= 0 and <= int.MaxValue && _events.TryGet((int)eventId, out var ev))
        {
            _open = ev;
            if (ev.Fail(this, Generation, msgId, new ProtocolViolationException($"the PDK result {why}"))) return;
            if (ReferenceEquals(_open, ev)) _open = null;
        }
        // no event to give the failure to: Kong answers the request 500 itself (an unanswered event is dropped later)
        Log.Warn($"connection {_io.Id}: event {eventId} of an oversized PDK result is unknown; answering 500");
        RespondStep(Generation, msgId, eventId is >= 0 and <= int.MaxValue ? (int)eventId : 0, s_exit500);
    }

    /// <summary>The callback <c>kong.response.exit(500, ...)</c> with the body and type of a plugin failure's 500 (<see cref="EventRunner"/>).</summary>
    private static readonly byte[] s_exit500 = BuildExit500();

    private static byte[] BuildExit500()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(2);
        w.Write("Method"); w.Write("kong.response.exit");
        w.Write("Args");
        w.WriteArrayHeader(3);
        w.Write(500);
        w.Write(EventRunner.UnexpectedErrorBody);
        w.WriteMapHeader(1);
        w.Write("Content-Type"); w.Write(EventRunner.JsonContentTypeValue);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private void Close(LogLevel level, string message)
    {
        Log.Write(level, $"connection {_io.Id}: {message}");
        _io.Close();
    }

    public void OnClosed()
    {
        // an RPC still open on this connection can never be answered: Kong gave up on that event
        var open = _open;
        _open = null;
        open?.AbortIfOpenOn(this, Generation);
        _server.Hub.Recycle(_io);
    }

    /// <summary>While stopping and once no event is in flight: idle connections are released (write side shut), see <c>KongPluginServer.StopAsync</c>.</summary>
    public void Drain()
    {
        if (_io.Closed || _open is not null || _refusing) return;
        _refusing = true;
        _io.Input.Clear();
        _io.ShutdownWrite();
    }

    // ------------------------------------------------------------------ requests

    private void Dispatch(ReadOnlyMemory<byte> message)
    {
        var r = new MessagePackReader(message);
        if (r.NextMessagePackType != MessagePackType.Array) throw new ProtocolViolationException("a request must be an array");
        int n = r.ReadArrayHeader();
        if (n != 4) throw new ProtocolViolationException($"a request has 4 elements, not {n}");
        if (r.NextMessagePackType != MessagePackType.Integer || r.ReadInt32() != 0) throw new ProtocolViolationException("only requests (type 0) are accepted");
        uint msgId = r.ReadUInt32();
        if (r.NextMessagePackType != MessagePackType.String || !r.TryReadStringSpan(out var method))
            throw new ProtocolViolationException("method name missing");
        if (r.NextMessagePackType != MessagePackType.Array) throw new ProtocolViolationException("params must be an array");
        int pn = r.ReadArrayHeader();
        ReadOnlyMemory<byte> param = default;
        if (pn > 0)
        {
            long start = r.Consumed;
            r.Skip();
            param = message.Slice((int)start, (int)(r.Consumed - start));
            for (int i = 1; i < pn; i++) r.Skip();
        }

        if (method.SequenceEqual("plugin.HandleEvent"u8)) HandleEvent(msgId, param);
        else if (method.StartsWith("plugin.Step"u8) && IsStep(method)) Step(msgId, param);
        else if (method.SequenceEqual("plugin.StartInstance"u8)) StartInstance(msgId, param);
        else if (method.SequenceEqual("plugin.CloseInstance"u8)) CloseInstance(msgId, param);
        else if (method.SequenceEqual("plugin.GetStatus"u8))
        {
            var w = BeginResponse(msgId, null);
            w.WriteMapHeader(1);
            w.Write("Pid");
            w.Write(Environment.ProcessId);
            EndResponse(ref w);
        }
        else
        {
            string name = System.Text.Encoding.UTF8.GetString(method);
            Log.Warn($"connection {_io.Id}: unknown method {name}");
            RespondError(msgId, "unknown method " + name);
        }
    }

    /// <summary>plugin.Step and the typed variants Kong picks by PDK function (docs/protocol.md#msgpack-methods): all alike here.</summary>
    internal static bool IsStep(ReadOnlySpan<byte> m) =>
        m.SequenceEqual("plugin.Step"u8) || m.SequenceEqual("plugin.StepError"u8) || m.SequenceEqual("plugin.StepCredential"u8)
        || m.SequenceEqual("plugin.StepConsumer"u8) || m.SequenceEqual("plugin.StepRoute"u8) || m.SequenceEqual("plugin.StepService"u8)
        || m.SequenceEqual("plugin.StepMemoryStats"u8) || m.SequenceEqual("plugin.StepMultiMap"u8);

    private void HandleEvent(uint msgId, ReadOnlyMemory<byte> param)
    {
        long instanceId = 0;
        var phase = KongPhase.None;
        var r = new MessagePackReader(param);
        if (!param.IsEmpty && r.NextMessagePackType == MessagePackType.Map)
        {
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                if (Key(ref r, "InstanceId"u8)) instanceId = ReadNumber(ref r);
                else if (Key(ref r, "EventName"u8))
                {
                    if (r.NextMessagePackType == MessagePackType.String && r.TryReadStringSpan(out var name)) phase = KongPhases.Parse(name);
                    else r.Skip();
                }
                else { SkipKey(ref r); r.Skip(); }
            }
        }
        if (_server.Refusing)
        {
            // nothing new starts while draining; "no plugin instance" makes Kong retry (its StartInstance is then
            // refused, which fails the request) rather than fail open: any other MsgPack error lets the request through
            RespondError(msgId, $"no plugin instance {instanceId} (server stopping)");
            return;
        }
        if (!_server.Registry.TryGet((int)instanceId, out var instance))
        {
            // Kong resets its cached instance and retries on this message (docs/protocol.md#msgpack-errors)
            RespondError(msgId, $"no plugin instance {instanceId}");
            return;
        }
        if (phase == KongPhase.None)
        {
            RespondError(msgId, "unknown event name");
            return;
        }
        instance.Touch();
        var events = _events;
        var ev = events.Create(instance, phase);
        if ((instance.Plugin.Info.Phases & phase) == 0)
        {
            RespondStep(Generation, msgId, ev.Id, default);
            events.Finish(ev);
            return;
        }
        _open = ev;
        ev.Start(this, Generation, msgId, Log);
    }

    private void Step(uint msgId, ReadOnlyMemory<byte> param)
    {
        // {"EventId": n, "Data": value}; Data missing means nil
        var r = new MessagePackReader(param);
        long eventId = -1;
        ReadOnlyMemory<byte> data = default;
        if (param.IsEmpty || r.NextMessagePackType != MessagePackType.Map) throw new ProtocolViolationException("Step params must be a map");
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            if (Key(ref r, "EventId"u8)) eventId = ReadNumber(ref r);
            else if (Key(ref r, "Data"u8))
            {
                long start = r.Consumed;
                r.Skip();
                data = param.Slice((int)start, (int)(r.Consumed - start));
                if (data.Length == 1 && data.Span[0] == MessagePackCode.Nil) data = default;
            }
            else { SkipKey(ref r); r.Skip(); }
        }
        if (eventId is >= 0 and <= int.MaxValue && _events.TryGet((int)eventId, out var ev))
        {
            _open = ev;
            if (ev.Deliver(this, Generation, msgId, data)) return;
            if (ReferenceEquals(_open, ev)) _open = null;
        }
        RespondError(msgId, $"event id {eventId} not found");
    }

    private void StartInstance(uint msgId, ReadOnlyMemory<byte> param)
    {
        if (_server.Refusing)
        {
            // Kong raises on a StartInstance error (the request fails, its claim is released); it does not replay
            RespondError(msgId, "server stopping: no new instance starts");
            return;
        }
        ReadOnlySpan<byte> config = "{}"u8;
        ReadOnlySpan<byte> name = default;
        var r = new MessagePackReader(param);
        if (!param.IsEmpty && r.NextMessagePackType == MessagePackType.Map)
        {
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                if (Key(ref r, "Config"u8))
                {
                    if (r.NextMessagePackType is MessagePackType.String or MessagePackType.Binary) config = StringAt(param, ref r);
                    else r.Skip();
                }
                else if (Key(ref r, "Name"u8))
                {
                    if (r.NextMessagePackType is MessagePackType.String or MessagePackType.Binary) name = StringAt(param, ref r);
                    else r.Skip();
                }
                else { SkipKey(ref r); r.Skip(); }
            }
        }
        if (!_server.TryGetPlugin(name, out var plugin))
        {
            // an error string: Kong raises on it (the request fails with 500); never "no plugin instance", which would replay
            string text = System.Text.Encoding.UTF8.GetString(name);
            Log.Limited(LogLevel.Error, $"connection {_io.Id}: StartInstance for plugin '{text}', which this server does not serve (it serves {_server.PluginNameList})",
                "unknown plugin");
            RespondError(msgId, $"no plugin named '{text}' (this server serves {_server.PluginNameList})");
            return;
        }
        PluginInstance inst;
        try { inst = _server.Registry.Start(plugin, config); }
        catch (ConfigException e)
        {
            Log.Error($"connection {_io.Id}: instance refused: {e.Message}");
            RespondError(msgId, "instance refused: " + e.Message);
            return;
        }
        Log.Info($"instance {inst.Id} of {plugin.Info.Name} started");
        var w = BeginResponse(msgId, null);
        w.WriteMapHeader(4);
        w.Write("Name"); w.Write(plugin.Info.Name);
        w.Write("Id"); w.Write(inst.Id);
        w.Write("Config"); w.WriteNil();
        w.Write("StartTime"); w.Write((double)inst.StartedAt);
        EndResponse(ref w);
    }

    private void CloseInstance(uint msgId, ReadOnlyMemory<byte> param)
    {
        long id = 0;
        var r = new MessagePackReader(param);
        if (!param.IsEmpty)
        {
            if (r.NextMessagePackType is MessagePackType.Integer or MessagePackType.Float) id = ReadNumber(ref r);
            else if (r.NextMessagePackType == MessagePackType.Map)
            {
                int n = r.ReadMapHeader();
                for (int i = 0; i < n; i++)
                {
                    if (Key(ref r, "InstanceId"u8)) id = ReadNumber(ref r);
                    else { SkipKey(ref r); r.Skip(); }
                }
            }
        }
        bool known = _server.Registry.Close((int)id);
        var w = BeginResponse(msgId, null);
        w.WriteMapHeader(2);
        w.Write("Name"); w.Write(_server.Plugin.Info.Name);
        w.Write("Id"); w.Write(id);
        EndResponse(ref w);
        if (!known) Log.Info($"close of unknown instance {id}");
    }

    // ------------------------------------------------------------------ reading helpers

    /// <summary>True (and the key consumed) when the next map key is <paramref name="key"/>; otherwise nothing is consumed.</summary>
    private static bool Key(ref MessagePackReader r, ReadOnlySpan<byte> key)
    {
        if (r.NextMessagePackType != MessagePackType.String) return false;
        var peek = r.CreatePeekReader();
        if (!peek.TryReadStringSpan(out var s) || !s.SequenceEqual(key)) return false;
        r.Skip();
        return true;
    }

    private static void SkipKey(ref MessagePackReader r) => r.Skip();

    private static long ReadNumber(ref MessagePackReader r) => r.NextMessagePackType switch
    {
        MessagePackType.Integer => r.ReadInt64(),
        MessagePackType.Float => (long)r.ReadDouble(),
        _ => SkipZero(ref r),
    };

    private static long SkipZero(ref MessagePackReader r)
    {
        r.Skip();
        return 0;
    }

    private static ReadOnlySpan<byte> StringAt(ReadOnlyMemory<byte> source, scoped ref MessagePackReader r)
    {
        long length = r.NextMessagePackType == MessagePackType.Binary ? r.ReadBytes()?.Length ?? 0 : r.ReadStringSequence()?.Length ?? 0;
        int end = (int)r.Consumed;
        return source.Span.Slice(end - (int)length, (int)length);
    }

    // ------------------------------------------------------------------ answers

    private MessagePackWriter BeginResponse(uint msgId, string? error)
    {
        var w = new MessagePackWriter(_io.Output);
        w.WriteArrayHeader(4);
        w.Write(1);
        w.Write(msgId);
        if (error is null) w.WriteNil(); else w.Write(error);
        return w;
    }

    private void EndResponse(ref MessagePackWriter w)
    {
        w.Flush();
        _io.Flush();
    }

    private void RespondError(uint msgId, string error)
    {
        var w = BeginResponse(msgId, error);
        w.WriteNil();
        EndResponse(ref w);
    }

    /// <summary>
    /// Answers the HandleEvent/Step <paramref name="msgId"/> of connection <paramref name="generation"/> with
    /// <c>{"EventId", "Data": callback}</c>, or <c>"ret"</c> when <paramref name="callback"/> is empty. False when that
    /// connection is gone (closed, or this object now serves another one).
    /// </summary>
    public bool RespondStep(int generation, uint msgId, int eventId, ReadOnlySpan<byte> callback)
    {
        lock (_io.Gate)
        {
            if (_io.Closed || _io.Generation != generation) return false;
            var w = BeginResponse(msgId, null);
            w.WriteMapHeader(2);
            w.Write("EventId"); w.Write(eventId);
            w.Write("Data");
            if (callback.IsEmpty) w.Write("ret");
            else w.WriteRaw(callback);
            w.Flush();
            return _io.Flush();
        }
    }

    /// <summary>The event answered its open call on this connection.</summary>
    public void Answered(MsgPackEvent ev, int generation)
    {
        lock (_io.Gate)
        {
            if (_io.Generation == generation && ReferenceEquals(_open, ev)) _open = null;
        }
    }
}
