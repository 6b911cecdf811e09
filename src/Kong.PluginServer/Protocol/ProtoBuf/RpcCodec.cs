using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Protocol.ProtoBuf;

internal enum RpcCommandKind
{
    Unknown = 0,
    GetPluginNames = 31,
    GetPluginInfo = 32,
    StartInstance = 33,
    GetInstanceStatus = 34,
    CloseInstance = 35,
    HandleEvent = 36,
}

/// <summary>A decoded <c>RpcCall</c>. Spans point into the frame and are valid until the next read.</summary>
internal ref struct RpcCommand
{
    public long Sequence;
    public RpcCommandKind Kind;
    public int InstanceId;
    public ReadOnlySpan<byte> Name;      // plugin name (start, info) or event name (handle event)
    public ReadOnlySpan<byte> Config;    // JSON (start)
}

/// <summary>Decodes <c>RpcCall</c> and encodes <c>RpcReturn</c> (docs/protocol.md#protobuf-messages) without allocating.</summary>
internal static class RpcCodec
{
    public static RpcCommand DecodeCall(ReadOnlySpan<byte> frame)
    {
        var cmd = new RpcCommand();
        var r = new ProtoReader(frame);
        while (r.Next(out int field, out int wt))
        {
            if (field == 1) { r.Expect(0, wt); cmd.Sequence = (long)r.Varint(); }
            else if (field is >= 31 and <= 36)
            {
                r.Expect(2, wt);
                cmd.Kind = (RpcCommandKind)field;
                DecodeCommand(r.LengthDelimited(), ref cmd);
            }
            else r.Skip(wt);
        }
        if (cmd.Kind == RpcCommandKind.Unknown) throw new ProtocolViolationException("RpcCall without a known command");
        return cmd;
    }

    private static void DecodeCommand(ReadOnlySpan<byte> body, ref RpcCommand cmd)
    {
        var r = new ProtoReader(body);
        while (r.Next(out int field, out int wt))
        {
            switch (cmd.Kind, field)
            {
                case (RpcCommandKind.GetPluginInfo, 1):
                case (RpcCommandKind.StartInstance, 1):
                    r.Expect(2, wt); cmd.Name = r.LengthDelimited(); break;
                case (RpcCommandKind.StartInstance, 2):
                    r.Expect(2, wt); cmd.Config = r.LengthDelimited(); break;
                case (RpcCommandKind.GetInstanceStatus, 1):
                case (RpcCommandKind.CloseInstance, 1):
                case (RpcCommandKind.HandleEvent, 1):
                    r.Expect(0, wt); cmd.InstanceId = (int)r.Varint(); break;
                case (RpcCommandKind.HandleEvent, 2):
                    r.Expect(2, wt); cmd.Name = r.LengthDelimited(); break;
                default:
                    r.Skip(wt); break;
            }
        }
    }

    /// <summary>Appends the frame <c>RpcReturn{sequence}</c> (an event's closing reply).</summary>
    public static void WriteReturn(OutputBuffer output, long sequence)
    {
        int at = output.BeginFrame();
        var w = new ProtoWriter(output);
        if (sequence != 0) w.VarintField(1, sequence);
        output.EndFrame(at);
    }

    /// <summary>Appends <c>RpcReturn{sequence, instance_status{name, instance_id, started_at}}</c>.</summary>
    public static void WriteInstanceStatus(OutputBuffer output, long sequence, string name, int instanceId, long startedAt)
    {
        int at = output.BeginFrame();
        var w = new ProtoWriter(output);
        if (sequence != 0) w.VarintField(1, sequence);
        int nested = w.BeginNested(33);
        if (name.Length > 0) w.StringField(1, name);
        if (instanceId != 0) w.VarintField(2, instanceId);
        if (startedAt != 0) w.VarintField(4, startedAt);
        w.EndNested(nested);
        output.EndFrame(at);
    }
}
