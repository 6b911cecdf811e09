using System.Buffers.Binary;
using Kong.PluginServer.Framing;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// Finds where one msgpack object ends in a stream, resumably: the bytes scanned so far are never looked at
/// again, so a message arriving a few bytes at a time costs time linear in its size, and a string or binary
/// payload is passed over by count without being read. The state is the position reached, the payload bytes
/// still to pass, and a stack of the elements each open array or map still expects. Used to delimit MsgPack:1
/// requests (docs/protocol.md#msgpack-framing), which carry no length prefix.
/// </summary>
internal sealed class MsgPackScanner
{
    private const int MaxDepth = 64;

    private readonly long[] _remaining = new long[MaxDepth + 1];
    private int _depth;
    private long _pos;   // bytes of the message scanned, counted from its first byte (including rebased ones)
    private long _base;  // bytes of the message already consumed by the caller (discarding)
    private long _skip;  // payload bytes still to pass

    public MsgPackScanner() => Reset();

    /// <summary>Bytes of the current message known so far: scanned, plus a payload announced but not received.</summary>
    public long KnownLength => _pos + _skip;

    /// <summary>Bytes scanned and not consumed by the caller: they can be dropped when the message is being discarded.</summary>
    public int ScannedUnconsumed => (int)(_pos - _base);

    public void Reset()
    {
        _depth = 1;
        _remaining[0] = 1;
        _pos = _base = _skip = 0;
    }

    /// <summary>The caller consumed (dropped) <paramref name="count"/> scanned bytes from the start of <c>data</c>.</summary>
    public void Rebase(int count) => _base += count;

    /// <summary>
    /// Scans on from where the last call stopped. <paramref name="data"/> holds the message's unconsumed bytes (from
    /// its first byte, or from where the caller last rebased). Returns the message's total length once it is complete
    /// (counted from its first byte), or -1 when more bytes are needed.
    /// </summary>
    /// <exception cref="ProtocolViolationException">a byte that starts no msgpack type, or nesting deeper than 64.</exception>
    public long Scan(ReadOnlySpan<byte> data)
    {
        long end = _base + data.Length; // stream offset one past the last byte available
        while (true)
        {
            if (_skip > 0)
            {
                long avail = end - _pos;
                if (avail < _skip)
                {
                    _pos = end;
                    _skip -= avail;
                    return -1;
                }
                _pos += _skip;
                _skip = 0;
                PopCompleted();
            }
            if (_depth == 0) return _pos;
            if (_pos >= end) return -1;

            var rest = data[(int)(_pos - _base)..];
            byte b = rest[0];
            int header;
            long payload = 0, children = 0;
            switch (b)
            {
                case <= 0x7f: header = 1; break;                                  // positive fixint
                case <= 0x8f: header = 1; children = 2L * (b & 0x0f); break;      // fixmap
                case <= 0x9f: header = 1; children = b & 0x0f; break;             // fixarray
                case <= 0xbf: header = 1; payload = b & 0x1f; break;              // fixstr
                case 0xc0 or 0xc2 or 0xc3: header = 1; break;                     // nil, false, true
                case 0xc1: throw new ProtocolViolationException("malformed msgpack: 0xc1 starts no type");
                case 0xc4 or 0xd9: header = 2; break;                             // bin8, str8
                case 0xc5 or 0xda: header = 3; break;                             // bin16, str16
                case 0xc6 or 0xdb: header = 5; break;                             // bin32, str32
                case 0xc7: header = 3; break;                                     // ext8: length, type
                case 0xc8: header = 4; break;                                     // ext16
                case 0xc9: header = 6; break;                                     // ext32
                case 0xca: header = 5; break;                                     // float32
                case 0xcb: header = 9; break;                                     // float64
                case 0xcc or 0xd0: header = 2; break;                             // uint8, int8
                case 0xcd or 0xd1: header = 3; break;
                case 0xce or 0xd2: header = 5; break;
                case 0xcf or 0xd3: header = 9; break;
                case 0xd4: header = 2; payload = 1; break;                        // fixext 1..16: type, data
                case 0xd5: header = 2; payload = 2; break;
                case 0xd6: header = 2; payload = 4; break;
                case 0xd7: header = 2; payload = 8; break;
                case 0xd8: header = 2; payload = 16; break;
                case 0xdc: header = 3; break;                                     // array16
                case 0xdd: header = 5; break;                                     // array32
                case 0xde: header = 3; break;                                     // map16
                case 0xdf: header = 5; break;                                     // map32
                default: header = 1; break;                                       // negative fixint
            }
            if (rest.Length < header) return -1; // the header itself is split: resume at its first byte
            switch (b)
            {
                case 0xc4 or 0xd9: payload = rest[1]; break;
                case 0xc5 or 0xda: payload = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]); break;
                case 0xc6 or 0xdb: payload = BinaryPrimitives.ReadUInt32BigEndian(rest[1..]); break;
                case 0xc7: payload = rest[1]; break;
                case 0xc8: payload = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]); break;
                case 0xc9: payload = BinaryPrimitives.ReadUInt32BigEndian(rest[1..]); break;
                case 0xdc: children = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]); break;
                case 0xdd: children = BinaryPrimitives.ReadUInt32BigEndian(rest[1..]); break;
                case 0xde: children = 2L * BinaryPrimitives.ReadUInt16BigEndian(rest[1..]); break;
                case 0xdf: children = 2L * BinaryPrimitives.ReadUInt32BigEndian(rest[1..]); break;
            }
            _pos += header;
            _remaining[_depth - 1]--; // one element of the enclosing level has begun
            if (children > 0)
            {
                if (_depth == MaxDepth) throw new ProtocolViolationException($"msgpack nested deeper than {MaxDepth} levels");
                _remaining[_depth++] = children;
            }
            _skip = payload;
            if (_skip == 0) PopCompleted();
        }
    }

    private void PopCompleted()
    {
        while (_depth > 0 && _remaining[_depth - 1] == 0) _depth--;
    }
}
