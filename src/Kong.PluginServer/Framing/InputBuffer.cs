using System.Buffers;

namespace Kong.PluginServer.Framing;

/// <summary>Raised for input that breaks the protocol; the connection that sent it is closed.</summary>
internal sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// The bytes received on one connection and not consumed yet, in one pooled array. The event loop receives
/// into the free space at the end; the protocol parses complete frames in place and consumes them. A frame
/// known to be large reserves its whole size once, so it is received straight into place and never copied
/// or re-parsed. Arrays up to <see cref="RetainedBytes"/> come from the shared pool; larger ones are plain
/// arrays dropped as soon as the frame is consumed (<see cref="ReleaseIfLarge"/>).
/// </summary>
internal sealed class InputBuffer : IDisposable
{
    /// <summary>Buffers up to this size are pooled and kept; larger ones live only while a frame needs them.</summary>
    public const int RetainedBytes = 64 * 1024;

    private readonly int _initialSize;
    private byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // one past the last received byte

    public InputBuffer(int initialSize = 8192)
    {
        _initialSize = initialSize;
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    }

    /// <summary>Unconsumed bytes.</summary>
    public int Length => _end - _start;

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(_start, _end - _start);

    /// <summary>A slice of the unconsumed bytes; valid until the next receive into this buffer.</summary>
    public ReadOnlyMemory<byte> Slice(int offset, int length) => _buffer.AsMemory(_start + offset, length);

    /// <summary>Capacity of the current array (for tests and the large-buffer release).</summary>
    public int Capacity => _buffer.Length;

    public void Consume(int count)
    {
        _start += count;
        if (_start == _end) _start = _end = 0;
    }

    /// <summary>Drops everything unconsumed.</summary>
    public void Clear() => _start = _end = 0;

    /// <summary>
    /// Free space at the end to receive into, at least <paramref name="minFree"/> bytes (compacting or growing as
    /// needed). The caller writes into it and calls <see cref="Advance"/>.
    /// </summary>
    public ArraySegment<byte> FreeSegment(int minFree = 1024)
    {
        if (_buffer.Length - _end < minFree)
        {
            if (_start > 0) Compact();
            if (_buffer.Length - _end < minFree) Resize(Math.Max(_end + minFree, _buffer.Length * 2));
        }
        return new ArraySegment<byte>(_buffer, _end, _buffer.Length - _end);
    }

    public void Advance(int count) => _end += count;

    /// <summary>Makes room for a message of <paramref name="total"/> bytes starting at the first unconsumed byte, so the rest of it is received in place.</summary>
    public void Reserve(int total)
    {
        if (_start + total <= _buffer.Length) return;
        if (total <= _buffer.Length) { Compact(); return; }
        Resize(total);
    }

    /// <summary>After a large frame: goes back to a small pooled array when nothing (or little) is left; true when it did.</summary>
    public bool ReleaseIfLarge()
    {
        if (_buffer.Length <= RetainedBytes || Length > _initialSize) return false;
        var small = ArrayPool<byte>.Shared.Rent(_initialSize);
        _buffer.AsSpan(_start, Length).CopyTo(small);
        _end = Length;
        _start = 0;
        Replace(small);
        return true;
    }

    private void Compact()
    {
        if (_start == 0) return;
        Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
        _end -= _start;
        _start = 0;
    }

    private void Resize(int size)
    {
        var next = size <= RetainedBytes ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        Buffer.BlockCopy(_buffer, _start, next, 0, _end - _start);
        _end -= _start;
        _start = 0;
        Replace(next);
    }

    private void Replace(byte[] next)
    {
        var old = _buffer;
        _buffer = next;
        if (old.Length > 0 && old.Length <= RetainedBytes) ArrayPool<byte>.Shared.Return(old);
    }

    public void Dispose()
    {
        Replace([]);
        _start = _end = 0;
    }
}
