using System.Text;
using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>
/// Writes protobuf wire format straight into an <see cref="OutputBuffer"/>, allocation-free.
/// Nested messages are written in place and their length is back-patched (<see cref="BeginNested"/>).
/// Proto3 rules as Kong's encoder applies them: default scalars are skipped by the callers, oneof
/// members are written even when they hold the default.
/// </summary>
internal readonly struct ProtoWriter(OutputBuffer output)
{
    public OutputBuffer Output => output;

    public void Tag(int field, int wireType) => Varint((ulong)((field << 3) | wireType));

    public void Varint(ulong value) => output.Advance(EncodeVarint(output.GetSpan(10), value));

    /// <summary>Writes <paramref name="value"/> as a varint at the start of <paramref name="span"/>; the bytes written.</summary>
    private static int EncodeVarint(Span<byte> span, ulong value)
    {
        int i = 0;
        while (value >= 0x80) { span[i++] = (byte)(value | 0x80); value >>= 7; }
        span[i++] = (byte)value;
        return i;
    }

    public void VarintField(int field, long value) { Tag(field, 0); Varint((ulong)value); }

    public void BoolField(int field, bool value) { Tag(field, 0); Varint(value ? 1UL : 0UL); }

    public void DoubleField(int field, double value)
    {
        Tag(field, 1);
        var span = output.GetSpan(8);
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(span, value);
        output.Advance(8);
    }

    public void StringField(int field, string value)
    {
        Tag(field, 2);
        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max < 128)
        {
            // length fits one varint byte: encode after a 1-byte placeholder
            var span = output.GetSpan(1 + max);
            int n = Encoding.UTF8.GetBytes(value, span[1..]);
            span[0] = (byte)n;
            output.Advance(1 + n);
        }
        else
        {
            int n = Encoding.UTF8.GetByteCount(value);
            Varint((ulong)n);
            int w = Encoding.UTF8.GetBytes(value, output.GetSpan(n));
            output.Advance(w);
        }
    }

    public void BytesField(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, 2);
        Varint((ulong)value.Length);
        output.Write(value);
    }

    /// <summary>
    /// Starts a length-delimited nested message; finish it with <see cref="EndNested"/>. One byte is reserved for the
    /// length, which is what nearly every nested message here needs (shorter than 128 bytes), so closing it seldom
    /// moves what was written.
    /// </summary>
    public int BeginNested(int field)
    {
        Tag(field, 2);
        int at = output.Length;
        output.GetSpan(1);
        output.Advance(1);
        return at;
    }

    /// <summary>Writes the varint length of everything written since <see cref="BeginNested"/> into its reserved byte, widening it when the length needs more.</summary>
    public void EndNested(int start)
    {
        int len = output.Length - start - 1;
        if (len < 0x80)
        {
            output.SpanAt(start, 1)[0] = (byte)len;
            return;
        }
        int size = VarintSize((ulong)len);
        output.ShiftRight(start + 1, size - 1);
        EncodeVarint(output.SpanAt(start, size), (ulong)len);
    }

    public static int VarintSize(ulong v)
    {
        int n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }
}
