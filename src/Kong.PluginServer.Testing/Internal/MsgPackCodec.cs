using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using MessagePack;

namespace Kong.PluginServer.Testing.Internal;

/// <summary>
/// msgpack as Kong's lua-MessagePack (0.5.x, <c>string_compat</c>) writes it, and a decoder into Lua values.
/// Rules: nil; booleans; integral numbers as ints (unsigned types when non-negative, signed when negative),
/// other numbers as float64; strings as fixstr/str16/str32 (never str8); a table with keys 1..n as an array,
/// other tables as maps, and an empty table as an empty array; <see cref="MsgPackBin"/> as bin;
/// <see cref="MsgPackEmptyMap"/> as an empty map.
/// </summary>
internal static class MsgPackCodec
{
    public static byte[] Encode(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        var w = new MessagePackWriter(buffer);
        Write(ref w, value);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A request <c>[0, msgid, method, params]</c>.</summary>
    public static byte[] EncodeRequest(long msgId, string method, IReadOnlyList<object?> args)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(4);
        WriteInteger(ref w, 0);
        WriteInteger(ref w, msgId);
        WriteString(ref w, method);
        Write(ref w, args.ToList());
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public static void Write(ref MessagePackWriter w, object? v)
    {
        switch (v)
        {
            case null:
            case CjsonNull:
                w.WriteNil(); break;
            case bool b: w.Write(b); break;
            case int i: WriteInteger(ref w, i); break;
            case long l: WriteInteger(ref w, l); break;
            case double d:
                if (Lua.IsInteger(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) WriteInteger(ref w, (long)d);
                else if (Lua.IsInteger(d) && d >= 0 && d < 1.8446744073709552e19) WriteUInt64(ref w, (ulong)d);
                else w.Write(d);
                break;
            case string s: WriteString(ref w, s); break;
            case byte[] raw: WriteStringBytes(ref w, raw); break;
            case MsgPackBin bin: w.Write(bin.Bytes.AsSpan()); break;
            case MsgPackEmptyMap: w.WriteMapHeader(0); break;
            case List<object?> list:
                w.WriteArrayHeader(list.Count);
                foreach (var item in list) Write(ref w, item);
                break;
            case Dictionary<string, object?> map:
            {
                int n = 0;
                foreach (var kv in map) if (kv.Value is not null) n++;
                if (n == 0) { w.WriteArrayHeader(0); break; } // an empty Lua table packs as an empty array
                w.WriteMapHeader(n);
                foreach (var kv in map)
                {
                    if (kv.Value is null) continue;
                    WriteString(ref w, kv.Key);
                    Write(ref w, kv.Value);
                }
                break;
            }
            default:
                throw new LuaError("pack '" + Lua.TypeName(v) + "' is unimplemented");
        }
    }

    public static void WriteInteger(ref MessagePackWriter w, long v)
    {
        Span<byte> b = w.GetSpan(9);
        int n;
        if (v >= 0)
        {
            if (v <= 0x7f) { b[0] = (byte)v; n = 1; }
            else if (v <= 0xff) { b[0] = 0xcc; b[1] = (byte)v; n = 2; }
            else if (v <= 0xffff) { b[0] = 0xcd; BinaryPrimitives.WriteUInt16BigEndian(b[1..], (ushort)v); n = 3; }
            else if (v <= 0xffffffffL) { b[0] = 0xce; BinaryPrimitives.WriteUInt32BigEndian(b[1..], (uint)v); n = 5; }
            else { b[0] = 0xcf; BinaryPrimitives.WriteUInt64BigEndian(b[1..], (ulong)v); n = 9; }
        }
        else
        {
            if (v >= -32) { b[0] = (byte)(0xe0 | (v & 0x1f)); n = 1; }
            else if (v >= sbyte.MinValue) { b[0] = 0xd0; b[1] = (byte)(sbyte)v; n = 2; }
            else if (v >= short.MinValue) { b[0] = 0xd1; BinaryPrimitives.WriteInt16BigEndian(b[1..], (short)v); n = 3; }
            else if (v >= int.MinValue) { b[0] = 0xd2; BinaryPrimitives.WriteInt32BigEndian(b[1..], (int)v); n = 5; }
            else { b[0] = 0xd3; BinaryPrimitives.WriteInt64BigEndian(b[1..], v); n = 9; }
        }
        w.Advance(n);
    }

    private static void WriteUInt64(ref MessagePackWriter w, ulong v)
    {
        Span<byte> b = w.GetSpan(9);
        b[0] = 0xcf;
        BinaryPrimitives.WriteUInt64BigEndian(b[1..], v);
        w.Advance(9);
    }

    public static void WriteString(ref MessagePackWriter w, string s) => WriteStringBytes(ref w, Encoding.UTF8.GetBytes(s));

    /// <summary>lua-MessagePack's string_compat: fixstr, str16 or str32; never str8.</summary>
    public static void WriteStringBytes(ref MessagePackWriter w, ReadOnlySpan<byte> bytes)
    {
        Span<byte> h = w.GetSpan(5);
        int n;
        if (bytes.Length < 32) { h[0] = (byte)(0xa0 | bytes.Length); n = 1; }
        else if (bytes.Length <= 0xffff) { h[0] = 0xda; BinaryPrimitives.WriteUInt16BigEndian(h[1..], (ushort)bytes.Length); n = 3; }
        else { h[0] = 0xdb; BinaryPrimitives.WriteUInt32BigEndian(h[1..], (uint)bytes.Length); n = 5; }
        w.Advance(n);
        w.WriteRaw(bytes);
    }

    /// <summary>Tries to decode one complete msgpack object at the start of <paramref name="data"/>.</summary>
    /// <returns>false when more bytes are needed.</returns>
    /// <exception cref="LuaError">Malformed msgpack (lua-MessagePack raises).</exception>
    public static bool TryDecode(ReadOnlyMemory<byte> data, out object? value, out int consumed)
    {
        value = null;
        consumed = 0;
        if (data.IsEmpty) return false;
        try
        {
            var probe = new MessagePackReader(data);
            try
            {
                probe.Skip();
            }
            catch (EndOfStreamException)
            {
                return false;
            }
            consumed = (int)probe.Consumed;
            var reader = new MessagePackReader(data[..consumed]);
            value = Read(ref reader);
            return true;
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException or InvalidOperationException)
        {
            throw new LuaError("msgpack: invalid data: " + e.Message);
        }
    }

    public static object? Decode(ReadOnlySpan<byte> data)
    {
        if (!TryDecode(data.ToArray(), out var v, out _)) throw new LuaError("msgpack: missing bytes");
        return v;
    }

    private static object? Read(ref MessagePackReader r)
    {
        switch (r.NextMessagePackType)
        {
            case MessagePackType.Nil: r.ReadNil(); return null;
            case MessagePackType.Boolean: return r.ReadBoolean();
            case MessagePackType.Integer:
                return r.NextCode == MessagePackCode.UInt64 ? (double)r.ReadUInt64() : (double)r.ReadInt64();
            case MessagePackType.Float: return r.ReadDouble();
            case MessagePackType.String:
            {
                var seq = r.ReadStringSequence();
                return seq is null ? "" : Encoding.UTF8.GetString(seq.Value.ToArray());
            }
            case MessagePackType.Binary:
            {
                var seq = r.ReadBytes();
                return seq is null ? Array.Empty<byte>() : seq.Value.ToArray();
            }
            case MessagePackType.Array:
            {
                int n = r.ReadArrayHeader();
                var list = new List<object?>(n);
                for (int i = 0; i < n; i++) list.Add(Read(ref r));
                return list;
            }
            case MessagePackType.Map:
            {
                int n = r.ReadMapHeader();
                var map = new Dictionary<string, object?>(n, StringComparer.Ordinal);
                for (int i = 0; i < n; i++)
                {
                    var key = Read(ref r);
                    var val = Read(ref r);
                    map[key is string s ? s : Lua.ToLuaString(key)] = val;
                }
                return map;
            }
            default:
                throw new LuaError("msgpack: unpack 'ext' is unimplemented");
        }
    }
}
