using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Pdk;

/// <summary>
/// Encodes PDK calls and decodes their replies for one wire protocol. One instance per connection or
/// event (it owns a reusable value writer), used from one thread at a time.
/// </summary>
internal abstract class PdkCodec
{
    /// <summary>Appends the call (ProtoBuf:1: method frame + argument frame; MsgPack:1: the callback map).</summary>
    public abstract void WriteCall(OutputBuffer output, PdkMethod method, in PdkArgs args);

    /// <summary>The UTF-8 bytes of a String/ByteString reply, without copying. Empty when absent.</summary>
    public abstract ReadOnlySpan<byte> ReadUtf8(ReadOnlyMemory<byte> reply);
    public abstract string ReadString(ReadOnlyMemory<byte> reply);
    public abstract long ReadInt(ReadOnlyMemory<byte> reply);
    public abstract double ReadNumber(ReadOnlyMemory<byte> reply);
    public abstract bool ReadBool(ReadOnlyMemory<byte> reply);
    public abstract object? ReadValue(ReadOnlyMemory<byte> reply);
    public abstract KongMultiMap ReadMultiMap(ReadOnlyMemory<byte> reply);
    public abstract KongConsumer? ReadConsumer(ReadOnlyMemory<byte> reply);
    public abstract KongCredential? ReadCredential(ReadOnlyMemory<byte> reply);
    public abstract KongRoute? ReadRoute(ReadOnlyMemory<byte> reply);
    public abstract KongService? ReadService(ReadOnlyMemory<byte> reply);
    public abstract KongMemoryStats ReadMemoryStats(ReadOnlyMemory<byte> reply);
    public abstract KongRawBody ReadRawBody(ReadOnlyMemory<byte> reply);
    public abstract KongUriCaptures ReadUriCaptures(ReadOnlyMemory<byte> reply);
    public abstract byte[] ReadBytes(ReadOnlyMemory<byte> reply);

    /// <summary>
    /// Reads the header entry at <paramref name="offset"/> of a raw get_headers reply (0: the first) and moves the
    /// offset past it: its name, its number of values and the first value, as slices of the reply (no copy).
    /// False at the end of the reply.
    /// </summary>
    public abstract bool NextHeader(ReadOnlyMemory<byte> reply, scoped ref int offset, out ReadOnlySpan<byte> name, out int valueCount, out ReadOnlySpan<byte> first);
}
