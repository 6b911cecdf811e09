using System.Buffers.Binary;
using System.Text;

namespace Resilience.Tests.Fuzz;

/// <summary>Hand-made protobuf wire bytes (any field, any wire type, any length), for inputs no encoder would write.</summary>
public static class PbWire
{
    public static void Varint(List<byte> b, ulong v)
    {
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
    }

    public static byte[] Varint(ulong v)
    {
        var b = new List<byte>(10);
        Varint(b, v);
        return [.. b];
    }

    public static byte[] Tag(int field, int wireType) => Varint(((ulong)(uint)field << 3) | (uint)wireType);

    /// <summary>A length-delimited field (wire type 2).</summary>
    public static byte[] Bytes(int field, ReadOnlySpan<byte> payload) => [.. Tag(field, 2), .. Varint((ulong)payload.Length), .. payload];

    public static byte[] Str(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

    /// <summary>A varint field (wire type 0).</summary>
    public static byte[] Int(int field, ulong v) => [.. Tag(field, 0), .. Varint(v)];

    public static byte[] Le(uint n)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, n);
        return b;
    }

    public static byte[] Frame(ReadOnlySpan<byte> payload) => [.. Le((uint)payload.Length), .. payload];

    /// <summary><c>google.protobuf.Value</c> holding a string.</summary>
    public static byte[] StringValue(ReadOnlySpan<byte> s) => Bytes(3, s);

    /// <summary>A <c>Struct</c> entry (map&lt;string, Value&gt;): key and raw Value bytes.</summary>
    public static byte[] StructEntry(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => Bytes(1, [.. Bytes(1, key), .. Bytes(2, value)]);

    /// <summary>A header map as Kong sends get_headers: each value a string Value (or a list of strings).</summary>
    public static byte[] Headers(IEnumerable<(string Name, string Value)> headers)
    {
        var b = new List<byte>();
        foreach (var (name, value) in headers) b.AddRange(StructEntry(Encoding.UTF8.GetBytes(name), StringValue(Encoding.UTF8.GetBytes(value))));
        return [.. b];
    }

    /// <summary><paramref name="depth"/> length-delimited fields <paramref name="field"/> nested in each other (built from the inside out in one buffer).</summary>
    public static byte[] Nested(int field, int depth)
    {
        var tag = Tag(field, 2);
        var buf = new byte[depth * (tag.Length + 5)];
        int at = buf.Length, len = 0;
        for (int i = 0; i < depth; i++)
        {
            var v = Varint((ulong)len);
            at -= v.Length; v.CopyTo(buf, at);
            at -= tag.Length; tag.CopyTo(buf, at);
            len = buf.Length - at;
        }
        return buf[at..];
    }

    /// <summary>A Value nested <paramref name="depth"/> times (list_value of list_value ...) around a string.</summary>
    public static byte[] NestedValue(int depth, bool viaStruct)
    {
        byte[] v = StringValue("x"u8);
        for (int i = 0; i < depth; i++)
            v = viaStruct ? Bytes(5, StructEntry("k"u8, v)) : Bytes(6, Bytes(1, v));
        return v;
    }
}

/// <summary>
/// Hand-made msgpack bytes: every type code, every length form, invalid UTF-8 in strings, lengths that lie.
/// </summary>
public sealed class MpWire
{
    private readonly List<byte> _b = new();

    public byte[] ToArray() => [.. _b];

    public MpWire Raw(params byte[] bytes) { _b.AddRange(bytes); return this; }

    public MpWire Nil() => Raw(0xc0);
    public MpWire Bool(bool v) => Raw(v ? (byte)0xc3 : (byte)0xc2);

    public MpWire Array(int n)
    {
        if (n < 16) return Raw((byte)(0x90 | n));
        if (n <= ushort.MaxValue) return Raw(0xdc, (byte)(n >> 8), (byte)n);
        return Raw(0xdd, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n);
    }

    public MpWire Map(int n)
    {
        if (n < 16) return Raw((byte)(0x80 | n));
        if (n <= ushort.MaxValue) return Raw(0xde, (byte)(n >> 8), (byte)n);
        return Raw(0xdf, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n);
    }

    public MpWire Int(long v)
    {
        if (v >= 0 && v < 128) return Raw((byte)v);
        if (v < 0 && v >= -32) return Raw((byte)(sbyte)v);
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, v);
        return Raw(0xd3).Raw(bytes);
    }

    public MpWire UInt64(ulong v)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, v);
        return Raw(0xcf).Raw(bytes);
    }

    public MpWire Float(double v)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(bytes, v);
        return Raw(0xcb).Raw(bytes);
    }

    public MpWire Str(string s) => StrBytes(Encoding.UTF8.GetBytes(s));

    /// <summary>A str with these raw bytes (invalid UTF-8 allowed); <paramref name="form"/>: 0 shortest, 8/16/32 a fixed header.</summary>
    public MpWire StrBytes(ReadOnlySpan<byte> s, int form = 0, int? declaredLength = null)
    {
        int n = declaredLength ?? s.Length;
        if (form == 0) form = n < 32 ? 5 : n < 256 ? 8 : n <= ushort.MaxValue ? 16 : 32;
        switch (form)
        {
            case 5: Raw((byte)(0xa0 | (n & 31))); break;
            case 8: Raw(0xd9, (byte)n); break;
            case 16: Raw(0xda, (byte)(n >> 8), (byte)n); break;
            default: Raw(0xdb, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n); break;
        }
        _b.AddRange(s.ToArray());
        return this;
    }

    public MpWire Bin(ReadOnlySpan<byte> s)
    {
        int n = s.Length;
        if (n < 256) Raw(0xc4, (byte)n);
        else Raw(0xc6, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n);
        _b.AddRange(s.ToArray());
        return this;
    }

    /// <summary>An ext value (fixext 1..16 or ext8).</summary>
    public MpWire Ext(sbyte type, ReadOnlySpan<byte> data)
    {
        switch (data.Length)
        {
            case 1: Raw(0xd4); break;
            case 2: Raw(0xd5); break;
            case 4: Raw(0xd6); break;
            case 8: Raw(0xd7); break;
            case 16: Raw(0xd8); break;
            default: Raw(0xc7, (byte)data.Length); break;
        }
        Raw((byte)type);
        _b.AddRange(data.ToArray());
        return this;
    }

    /// <summary>A request header <c>[0, msgid, method, params(n)]</c>: the caller appends the n params.</summary>
    public static MpWire Request(uint msgId, string method, int paramCount) => new MpWire().Array(4).Int(0).Int(msgId).Str(method).Array(paramCount);

    /// <summary>A string-keyed map from name → writer action.</summary>
    public MpWire Object(params (string Key, Action<MpWire> Value)[] members)
    {
        Map(members.Length);
        foreach (var (k, v) in members)
        {
            Str(k);
            v(this);
        }
        return this;
    }
}
