using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;

namespace Kong.PluginServer.Framing;

/// <summary>
/// A growable, pooled byte buffer that collects everything a connection will send, so that several
/// frames (PDK steps, the end-of-event marker, the RpcReturn) leave in one socket write.
/// Implements <see cref="IBufferWriter{T}"/> for the MessagePack writer. Reused for the life of a connection.
/// </summary>
internal sealed class OutputBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _length;

    public OutputBuffer(int initialSize = 4096) => _buffer = ArrayPool<byte>.Shared.Rent(initialSize);

    public int Length => _length;
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);
    internal byte[] RawBuffer => _buffer;

    public void Clear() => _length = 0;

    /// <summary>Clears, and drops a buffer grown past 1 MiB (a big exit body must not stay with a parked worker).</summary>
    public bool Reset()
    {
        _length = 0;
        if (_buffer.Length <= 1024 * 1024) return false;
        _buffer = ArrayPool<byte>.Shared.Rent(4096);
        return true;
    }

    public void Advance(int count) => _length += count;

    public Memory<byte> GetMemory(int sizeHint = 0) { Ensure(Math.Max(sizeHint, 1)); return _buffer.AsMemory(_length); }

    public Span<byte> GetSpan(int sizeHint = 0) { Ensure(Math.Max(sizeHint, 1)); return _buffer.AsSpan(_length); }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    public void WriteByte(byte b) { Ensure(1); _buffer[_length++] = b; }

    /// <summary>Reserves a 4-byte little-endian length prefix; returns its position for <see cref="EndFrame"/>.</summary>
    public int BeginFrame() { Ensure(4); int at = _length; _length += 4; return at; }

    /// <summary>Writes the length of everything appended since <see cref="BeginFrame"/> into the prefix.</summary>
    public void EndFrame(int at) =>
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(at, 4), (uint)(_length - at - 4));

    /// <summary>Appends a whole frame: length prefix and payload.</summary>
    public void WriteFrame(ReadOnlySpan<byte> payload)
    {
        Ensure(4 + payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_length, 4), (uint)payload.Length);
        payload.CopyTo(_buffer.AsSpan(_length + 4));
        _length += 4 + payload.Length;
    }

    /// <summary>Moves the bytes in [from, Length) right by <paramref name="by"/> (used to back-patch varint lengths).</summary>
    internal void ShiftRight(int from, int by)
    {
        Ensure(by);
        Buffer.BlockCopy(_buffer, from, _buffer, from + by, _length - from);
        _length += by;
    }

    internal Span<byte> SpanAt(int at, int length) => _buffer.AsSpan(at, length);

    /// <summary>Sends everything collected in as few writes as the kernel allows, then clears the buffer.</summary>
    public void FlushTo(Socket socket)
    {
        int sent = 0;
        while (sent < _length)
            sent += socket.Send(_buffer, sent, _length - sent, SocketFlags.None);
        _length = 0;
    }

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length) return;
        int size = Math.Max(_buffer.Length * 2, _length + extra);
        var bigger = size <= 1024 * 1024 ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        Buffer.BlockCopy(_buffer, 0, bigger, 0, _length);
        if (_buffer.Length <= 1024 * 1024) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0 && b.Length <= 1024 * 1024) ArrayPool<byte>.Shared.Return(b);
    }
}
