using System.Buffers;
using Kong.PluginServer.Pdk;
using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>Writes PDK values as msgpack (maps and arrays with their counts up front). One per codec, pointed at the output of each call.</summary>
internal sealed class MsgPackValueWriter : PdkValueWriter
{
    private IBufferWriter<byte> _output = null!;

    public MsgPackValueWriter() { }

    public MsgPackValueWriter(IBufferWriter<byte> output) => _output = output;

    public MsgPackValueWriter To(IBufferWriter<byte> output)
    {
        _output = output;
        return this;
    }

    private MessagePackWriter W() => new(_output);

    public override void Null() { var w = W(); w.WriteNil(); w.Flush(); }
    public override void String(string value) { var w = W(); w.Write(value); w.Flush(); }
    public override void String(ReadOnlySpan<byte> utf8) { var w = W(); w.WriteString(utf8); w.Flush(); }
    public override void Number(double value) { var w = W(); w.Write(value); w.Flush(); }
    public override void Integer(long value) { var w = W(); w.Write(value); w.Flush(); }
    public override void Bool(bool value) { var w = W(); w.Write(value); w.Flush(); }
    public override void BeginMap(int count) { var w = W(); w.WriteMapHeader(count); w.Flush(); }
    public override void Key(string name) => String(name);
    public override void EndMap() { }
    public override void BeginList(int count) { var w = W(); w.WriteArrayHeader(count); w.Flush(); }
    public override void EndList() { }
}
