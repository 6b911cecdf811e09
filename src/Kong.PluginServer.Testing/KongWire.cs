using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

/// <summary>
/// Kong's wire encodings, for byte-exact and hostile tests (use with <see cref="KongConnection"/>).
/// Lua values are modelled as: null (nil), bool, double (any number), string, byte[] (raw string),
/// List&lt;object?&gt; (sequence table), Dictionary&lt;string, object?&gt; (hash table).
/// </summary>
public static class KongWire
{
    /// <summary><c>RpcCall{sequence, cmd_start_instance{name, config}}</c>.</summary>
    internal static RpcCall StartInstance(long sequence, string name, string configJson) => new()
    {
        Sequence = sequence,
        CmdStartInstance = new CmdStartInstance { Name = name, Config = Google.Protobuf.ByteString.CopyFromUtf8(configJson) },
    };

    /// <summary><c>RpcCall{sequence, cmd_handle_event{instance_id, event_name}}</c>.</summary>
    internal static RpcCall HandleEvent(long sequence, int instanceId, string phase) => new()
    {
        Sequence = sequence,
        CmdHandleEvent = new CmdHandleEvent { InstanceId = instanceId, EventName = phase },
    };

    /// <summary><c>RpcCall{sequence, cmd_close_instance{instance_id}}</c>.</summary>
    internal static RpcCall CloseInstance(long sequence, int instanceId) => new()
    {
        Sequence = sequence,
        CmdCloseInstance = new CmdCloseInstance { InstanceId = instanceId },
    };

    /// <summary>A frame: uint32-LE length + payload (the bytes of Kong's two writes, concatenated).</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var b = new byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)payload.Length);
        payload.CopyTo(b.AsSpan(4));
        return b;
    }

    /// <summary>A frame holding <paramref name="message"/>.</summary>
    public static byte[] Frame(IMessage message) => Frame(message.ToByteArray());

    /// <summary>Kong's wire name of a <c>service Kong</c> method (docs/protocol.md#pdk-method-names).</summary>
    public static string MethodName(MethodDescriptor method) => PbBridge.WireName(method);

    /// <summary>The wire names of every PDK method in the .proto (74), as Kong resolves them.</summary>
    public static IReadOnlyList<string> PdkMethods { get; } = PbBridge.Methods.Keys.ToArray();

    /// <summary>How Kong encodes a Lua value into <c>google.protobuf.Value</c> (nil is <c>null_value = 1</c>).</summary>
    public static Value KongValue(object? luaValue) => PbBridge.LuaToValue(luaValue);

    /// <summary>How Kong decodes a <c>Value</c> into a Lua value (<c>bool_value or string_value or number_value or null_value</c>).</summary>
    public static object? UnwrapValue(Value value) => PbBridge.ValueToLua(value);

    /// <summary>Encodes a Lua value with Kong's lua-MessagePack rules (string_compat, ints, float64, empty table = empty array).</summary>
    public static byte[] EncodeMsgPack(object? luaValue) => MsgPackCodec.Encode(luaValue);

    /// <summary>A msgpack-rpc request <c>[0, msgid, method, [args...]]</c> as Kong writes it.</summary>
    public static byte[] MsgPackRequest(long msgId, string method, params object?[] args) => MsgPackCodec.EncodeRequest(msgId, method, args);

    /// <summary>Decodes one msgpack object into Lua values (strings as string, bin as byte[], numbers as double).</summary>
    public static object? DecodeMsgPack(ReadOnlySpan<byte> data) => MsgPackCodec.Decode(data);

    /// <summary>Re-encodes JSON as Kong's cjson would (no spaces, "\/", "%.14g" numbers, empty arrays as <c>{}</c> unless told otherwise).</summary>
    public static string CjsonEncode(string json, bool emptyArraysAsObjects = true) => Cjson.Encode(Cjson.Decode(json), emptyArraysAsObjects);
}
