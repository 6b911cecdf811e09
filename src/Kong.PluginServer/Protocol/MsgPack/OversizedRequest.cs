using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// What can be known of a MsgPack:1 request too large to keep, which is passed over without being buffered: its
/// msgid and method from its first bytes, and for a Step (a PDK result) its EventId, from its first bytes when Kong's
/// map put <c>EventId</c> before <c>Data</c>, or from its last bytes when it came after. Enough to answer the request
/// instead of closing the connection, which on MsgPack:1 would let the request through (docs/protocol.md#frame-sizes).
/// </summary>
internal sealed class OversizedRequest
{
    // the last bytes of a {Data, EventId} map: the key (fixstr "EventId") and an integer of at most 9 bytes
    private static readonly byte[] s_eventIdKey = [0xa7, .. "EventId"u8];
    private const int TailBytes = 32;

    private readonly byte[] _tail = new byte[TailBytes];
    private int _tailLength;
    private bool _eventIdLast;

    /// <summary>The request's msgid, when its first bytes form a request (<c>[0, msgid, method, ...]</c> with a string method).</summary>
    public uint? MsgId { get; private set; }

    /// <summary>The request is a <c>plugin.Step*</c>: it carries a PDK result.</summary>
    public bool IsStep { get; private set; }

    /// <summary>The Step's EventId, or -1 when it could not be read.</summary>
    public long EventId { get; private set; } = -1;

    /// <summary>Starts over with the request's first bytes (as many as were received).</summary>
    public void Begin(ReadOnlyMemory<byte> first)
    {
        MsgId = null;
        IsStep = false;
        EventId = -1;
        _eventIdLast = false;
        _tailLength = 0;
        var r = new MessagePackReader(first);
        try
        {
            if (r.NextMessagePackType != MessagePackType.Array || r.ReadArrayHeader() != 4) return;
            if (r.NextMessagePackType != MessagePackType.Integer || r.ReadInt32() != 0) return;
            if (r.NextMessagePackType != MessagePackType.Integer) return;
            uint msgId = r.ReadUInt32();
            if (r.NextMessagePackType != MessagePackType.String || !r.TryReadStringSpan(out var method)) return;
            MsgId = msgId;
            IsStep = MsgPackConnection.IsStep(method);
            if (!IsStep || r.NextMessagePackType != MessagePackType.Array || r.ReadArrayHeader() < 1) return;
            if (r.NextMessagePackType != MessagePackType.Map || r.ReadMapHeader() != 2) return; // Kong's {EventId, Data}
            if (r.NextMessagePackType != MessagePackType.String || !r.TryReadStringSpan(out var key)) return;
            if (key.SequenceEqual("EventId"u8)) { if (r.NextMessagePackType == MessagePackType.Integer) EventId = r.ReadInt64(); }
            else _eventIdLast = key.SequenceEqual("Data"u8);
        }
        catch (EndOfStreamException) { } // the first bytes end inside what is read: what was read stands
        catch (MessagePackSerializationException) { }
        catch (OverflowException) { } // a type, msgid or EventId out of its range: not read
    }

    /// <summary>Bytes of the request passed over, in order (the last few are kept).</summary>
    public void Pass(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= TailBytes)
        {
            bytes[^TailBytes..].CopyTo(_tail);
            _tailLength = TailBytes;
            return;
        }
        int keep = Math.Min(_tailLength, TailBytes - bytes.Length);
        _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
        bytes.CopyTo(_tail.AsSpan(keep));
        _tailLength = keep + bytes.Length;
    }

    /// <summary>
    /// The request ended (its last byte was passed). When <c>Data</c> came first, the map's second key and its value
    /// end the request: read EventId there. Only an integer encoding whose length places the key exactly before it
    /// matches, so bytes inside <c>Data</c> can never be taken for it.
    /// </summary>
    public void End()
    {
        if (!_eventIdLast || EventId >= 0) return;
        var tail = _tail.AsSpan(0, _tailLength);
        foreach (int length in (ReadOnlySpan<int>)[1, 2, 3, 5, 9])
        {
            if (tail.Length < s_eventIdKey.Length + length) continue;
            var value = tail[^length..];
            if (EncodedLength(value[0]) != length || !tail[^(length + s_eventIdKey.Length)..^length].SequenceEqual(s_eventIdKey)) continue;
            var r = new MessagePackReader(value.ToArray());
            try { EventId = r.ReadInt64(); }
            catch (OverflowException) { } // above long's range: no event has it
            return;
        }
    }

    /// <summary>The length of the msgpack integer that starts with <paramref name="first"/>, or 0 when it starts none.</summary>
    private static int EncodedLength(byte first) => first switch
    {
        <= 0x7f or >= 0xe0 => 1,
        0xcc or 0xd0 => 2,
        0xcd or 0xd1 => 3,
        0xce or 0xd2 => 5,
        0xcf or 0xd3 => 9,
        _ => 0,
    };
}
