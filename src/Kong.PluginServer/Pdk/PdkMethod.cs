using System.Text;

namespace Kong.PluginServer.Pdk;

/// <summary>The protobuf message a PDK method takes (docs/protocol.md#method-table); decides the MsgPack positional args too.</summary>
internal enum PdkArgKind { Empty, String, Int, Bool, KV, ListValue, Struct, ExitArgs, Target, ConsumerSpec, AuthenticateArgs, ByteString }

/// <summary>The protobuf message a PDK method returns. <see cref="NoReply"/>: Kong never answers (kong.response.exit).</summary>
internal enum PdkReturnKind { Empty, String, Int, Number, Bool, Value, Struct, Consumer, Credential, Route, Service, MemoryStats, RawBody, UriCaptures, ByteString, NoReply }

/// <summary>One PDK method as Kong names it on the wire, with its argument and result messages.</summary>
internal sealed class PdkMethod
{
    internal PdkMethod(string name, PdkArgKind arg, PdkReturnKind ret)
    {
        Name = name;
        NameUtf8 = Encoding.ASCII.GetBytes(name);
        Arg = arg;
        Return = ret;
    }

    public string Name { get; }
    public byte[] NameUtf8 { get; }
    public PdkArgKind Arg { get; }
    public PdkReturnKind Return { get; }

    /// <summary>True for calls whose result the handler never needs: they are pipelined.</summary>
    public bool IsSetter => Return == PdkReturnKind.Empty;

    public override string ToString() => Name;
}
