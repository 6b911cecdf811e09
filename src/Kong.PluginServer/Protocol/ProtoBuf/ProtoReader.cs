using System.Buffers.Binary;
using System.Text;
using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>
/// A forward-only protobuf wire reader over one frame. Malformed input raises
/// <see cref="ProtocolViolationException"/>; unknown fields are skipped.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly bool End => _pos >= _data.Length;

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _pos;

    /// <summary>Reads the next tag; false at the end of the message.</summary>
    public bool Next(out int field, out int wireType)
    {
        if (_pos >= _data.Length) { field = 0; wireType = 0; return false; }
        ulong tag = Varint();
        field = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        if (field <= 0 || tag > int.MaxValue) throw Bad("invalid field number");
        return true;
    }

    public ulong Varint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw Bad("truncated varint");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return result;
        }
        throw Bad("varint longer than 10 bytes");
    }

    public ReadOnlySpan<byte> LengthDelimited()
    {
        ulong len = Varint();
        if (len > (ulong)(_data.Length - _pos)) throw Bad("length-delimited field overruns the message");
        var s = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public double Fixed64Double()
    {
        if (_data.Length - _pos < 8) throw Bad("truncated fixed64");
        double d = BinaryPrimitives.ReadDoubleLittleEndian(_data[_pos..]);
        _pos += 8;
        return d;
    }

    public string String() => Encoding.UTF8.GetString(LengthDelimited());

    /// <summary>Reads a field of the expected wire type, or raises.</summary>
    public void Expect(int wireType, int actual)
    {
        if (wireType != actual) throw Bad($"wire type {actual} where {wireType} was expected");
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: Varint(); break;
            case 1: if (_data.Length - _pos < 8) throw Bad("truncated fixed64"); _pos += 8; break;
            case 2: LengthDelimited(); break;
            case 5: if (_data.Length - _pos < 4) throw Bad("truncated fixed32"); _pos += 4; break;
            default: throw Bad($"unsupported wire type {wireType}");
        }
    }

    private static ProtocolViolationException Bad(string what) => new("malformed protobuf: " + what);
}
