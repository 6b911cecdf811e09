namespace Kong.PluginServer.Pdk;

/// <summary>The protocol Kong speaks with this server (<c>pluginserver_*_protocol</c>), as a plugin sees it on <see cref="KongPdk.Protocol"/>.</summary>
public enum WireProtocol
{
    /// <summary><c>ProtoBuf:1</c>: one connection per event, PDK calls pipelined (docs/protocol.md#protobuf).
    /// Kong stores <c>false</c> and null as nil through it (docs/protocol.md#value-unwrap).</summary>
    ProtoBuf,

    /// <summary><c>MsgPack:1</c>: msgpack-rpc, one PDK call per Kong RPC (docs/protocol.md#msgpack).</summary>
    MsgPack,
}
