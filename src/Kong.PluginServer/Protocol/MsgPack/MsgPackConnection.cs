using System.Net.Sockets;
using System.Text;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;
using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// One Kong connection speaking MsgPack:1 (msgpack-rpc, docs/protocol.md#msgpack): reads requests <c>[0, msgid, method, params]</c>
/// and answers <c>[1, msgid, error, result]</c>. Kong sends one request per pooled checkout, so answers may
/// come from another thread (the event that continues); writes are serialized per connection.
/// </summary>
internal sealed class MsgPackConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly KongPluginServer _server;
    private readonly SocketInput _input;
    private readonly OutputBuffer _output = new();
    private readonly object _writeLock = new();
    private readonly int _id;

    public MsgPackConnection(Socket socket, KongPluginServer server, int id)
    {
        _socket = socket;
        _server = server;
        _id = id;
        _input = new SocketInput(socket, server.Options.MaxFrameBytes);
    }

    private ServerLog Log => _server.Options.Log;

    public void Run()
    {
        try
        {
            while (TryReadMessage(out var message))
                if (!Dispatch(message)) break;
        }
        catch (ProtocolViolationException e) { Log.Warn($"connection {_id}: closing: {e.Message}"); }
        catch (MessagePackSerializationException e) { Log.Warn($"connection {_id}: closing: malformed msgpack: {e.Message}"); }
        catch (SocketException e) { Log.Debug($"connection {_id}: socket error: {e.SocketErrorCode}"); }
        catch (ObjectDisposedException) { }
        catch (Exception e) { Log.Error($"connection {_id}: closing after an unexpected error: {e}"); }
        finally
        {
            // an RPC still open on this connection can never be answered: Kong gave up on that event
            _server.MsgPackEvents.AbortOpenOn(this);
        }
    }

    /// <summary>Reads one complete msgpack object; false on EOF between messages.</summary>
    private bool TryReadMessage(out ReadOnlyMemory<byte> message)
    {
        while (true)
        {
            var buffered = _input.Buffered;
            if (!buffered.IsEmpty)
            {
                var r = new MessagePackReader(buffered);
                bool complete;
                try { r.Skip(); complete = true; }
                catch (EndOfStreamException) { complete = false; }
                if (complete)
                {
                    int len = (int)r.Consumed;
                    message = buffered[..len];
                    _input.Consume(len);
                    return true;
                }
            }
            if (!_input.ReceiveMore())
            {
                if (!_input.Buffered.IsEmpty) throw new ProtocolViolationException("connection closed inside a message");
                message = default;
                return false;
            }
        }
    }

    private bool Dispatch(ReadOnlyMemory<byte> message)
    {
        var r = new MessagePackReader(message);
        if (r.NextMessagePackType != MessagePackType.Array) throw new ProtocolViolationException("a request must be an array");
        int n = r.ReadArrayHeader();
        if (n != 4) throw new ProtocolViolationException($"a request has 4 elements, not {n}");
        if (r.ReadInt32() != 0) throw new ProtocolViolationException("only requests (type 0) are accepted");
        uint msgId = r.ReadUInt32();
        string method = r.ReadString() ?? throw new ProtocolViolationException("method name missing");
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

        switch (method)
        {
            case "plugin.HandleEvent": return HandleEvent(msgId, param);
            case "plugin.Step":
            case "plugin.StepError":
            case "plugin.StepCredential":
            case "plugin.StepConsumer":
            case "plugin.StepRoute":
            case "plugin.StepService":
            case "plugin.StepMemoryStats":
            case "plugin.StepMultiMap":
                Step(msgId, param);
                return true;
            case "plugin.StartInstance": StartInstance(msgId, param); return true;
            case "plugin.CloseInstance": CloseInstance(msgId, param); return true;
            case "plugin.GetStatus":
                Respond(msgId, null, w => { w.WriteMapHeader(1); w.Write("Pid"); w.Write(Environment.ProcessId); });
                return true;
            default:
                Log.Warn($"connection {_id}: unknown method {method}");
                Respond(msgId, "unknown method " + method, null);
                return true;
        }
    }

    private bool HandleEvent(uint msgId, ReadOnlyMemory<byte> param)
    {
        var p = ReadMap(param);
        int instanceId = (int)MsgPackValues.AsLong(p.GetValueOrDefault("InstanceId"));
        var phase = KongPhases.Parse(MsgPackValues.AsString(p.GetValueOrDefault("EventName")) ?? "");
        if (_server.Stopping)
        {
            // nothing new starts while draining; "no plugin instance" makes Kong retry elsewhere rather than
            // fail open (any other MsgPack error lets the request through)
            Respond(msgId, $"no plugin instance {instanceId} (server stopping)", null);
            return true;
        }
        if (!_server.Registry.TryGet(instanceId, out var instance))
        {
            // Kong resets its cached instance and retries on this message (docs/protocol.md#msgpack-errors)
            Respond(msgId, $"no plugin instance {instanceId}", null);
            return true;
        }
        if (phase == KongPhase.None)
        {
            Respond(msgId, "unknown event name", null);
            return true;
        }
        instance.Touch();
        var ev = _server.MsgPackEvents.Create(instance, phase);
        if ((_server.Plugin.Info.Phases & phase) == 0)
        {
            RespondStep(msgId, ev.Id, null);
            _server.MsgPackEvents.Remove(ev);
            return true;
        }
        ev.Start(this, msgId, Log);
        return true;
    }

    private void Step(uint msgId, ReadOnlyMemory<byte> param)
    {
        // {"EventId": n, "Data": value}; Data missing means nil
        var r = new MessagePackReader(param);
        int eventId = -1;
        ReadOnlyMemory<byte> data = default;
        if (r.NextMessagePackType != MessagePackType.Map) throw new ProtocolViolationException("Step params must be a map");
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            string? key = r.NextMessagePackType == MessagePackType.String ? r.ReadString() : null;
            if (key == "EventId") eventId = r.ReadInt32();
            else if (key == "Data")
            {
                long start = r.Consumed;
                r.Skip();
                data = param.Slice((int)start, (int)(r.Consumed - start));
                if (data.Length == 1 && data.Span[0] == MessagePackCode.Nil) data = default;
            }
            else r.Skip();
        }
        if (!_server.MsgPackEvents.TryGet(eventId, out var ev) || !ev.Deliver(this, msgId, data))
            Respond(msgId, $"event id {eventId} not found", null);
    }

    private void StartInstance(uint msgId, ReadOnlyMemory<byte> param)
    {
        var p = ReadMap(param);
        string config = MsgPackValues.AsString(p.GetValueOrDefault("Config")) ?? "{}";
        PluginInstance inst;
        try { inst = _server.Registry.Start(Encoding.UTF8.GetBytes(config)); }
        catch (ConfigException e)
        {
            Log.Error($"connection {_id}: instance refused: {e.Message}");
            Respond(msgId, "instance refused: " + e.Message, null);
            return;
        }
        Log.Info($"instance {inst.Id} started");
        string name = _server.Plugin.Info.Name;
        Respond(msgId, null, w =>
        {
            w.WriteMapHeader(4);
            w.Write("Name"); w.Write(name);
            w.Write("Id"); w.Write(inst.Id);
            w.Write("Config"); w.WriteNil();
            w.Write("StartTime"); w.Write((double)inst.StartedAt);
        });
    }

    private void CloseInstance(uint msgId, ReadOnlyMemory<byte> param)
    {
        var r = new MessagePackReader(param);
        int id = r.NextMessagePackType == MessagePackType.Integer ? r.ReadInt32() : (int)MsgPackValues.AsLong(ReadMap(param).GetValueOrDefault("InstanceId"));
        bool known = _server.Registry.Close(id);
        string name = _server.Plugin.Info.Name;
        Respond(msgId, null, w =>
        {
            w.WriteMapHeader(2);
            w.Write("Name"); w.Write(name);
            w.Write("Id"); w.Write(id);
        });
        if (!known) Log.Info($"close of unknown instance {id}");
    }

    private static Dictionary<string, object?> ReadMap(ReadOnlyMemory<byte> param)
    {
        if (param.IsEmpty) return [];
        var r = new MessagePackReader(param);
        return MsgPackValues.Read(ref r) as Dictionary<string, object?> ?? [];
    }

    /// <summary>Answers HandleEvent/Step with {"EventId", "Data": callback or "ret"}.</summary>
    public void RespondStep(uint msgId, int eventId, byte[]? callback)
    {
        Respond(msgId, null, w =>
        {
            w.WriteMapHeader(2);
            w.Write("EventId"); w.Write(eventId);
            w.Write("Data");
            if (callback is null) w.Write("ret");
            else w.WriteRaw(callback);
        });
    }


    private void Respond(uint msgId, string? error, Action<MessagePackWriterBox>? result)
    {
        lock (_writeLock)
        {
            _output.Clear();
            var w = new MessagePackWriter(_output);
            w.WriteArrayHeader(4);
            w.Write(1);
            w.Write(msgId);
            if (error is null) w.WriteNil(); else w.Write(error);
            if (result is null) { w.WriteNil(); w.Flush(); }
            else
            {
                w.Flush();
                result(new MessagePackWriterBox(_output));
            }
            try { _output.FlushTo(_socket); }
            catch (SocketException e) { Log.Debug($"connection {_id}: write failed: {e.SocketErrorCode}"); }
            catch (ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        try { _socket.Dispose(); } catch { }
        _input.Dispose();
        _output.Dispose();
    }
}

/// <summary>Lets a lambda write msgpack into a buffer (MessagePackWriter is a ref struct and cannot be captured).</summary>
internal sealed class MessagePackWriterBox(OutputBuffer output)
{
    public void WriteMapHeader(int n) { var w = new MessagePackWriter(output); w.WriteMapHeader(n); w.Flush(); }
    public void Write(string s) { var w = new MessagePackWriter(output); w.Write(s); w.Flush(); }
    public void Write(int v) { var w = new MessagePackWriter(output); w.Write(v); w.Flush(); }
    public void Write(double v) { var w = new MessagePackWriter(output); w.Write(v); w.Flush(); }
    public void WriteNil() { var w = new MessagePackWriter(output); w.WriteNil(); w.Flush(); }
    public void WriteRaw(byte[] raw) => output.Write(raw);
}
