using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;

namespace Kong.PluginServer.Framing;

/// <summary>Raised for input that breaks the protocol; the connection that sent it is closed.</summary>
public sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>
/// Blocking, buffered input from one connection. Frames are parsed in place from a pooled buffer, so
/// Kong's split writes (length, then body) and several frames arriving in one read both cost nothing
/// extra. A returned frame is valid until the next read.
/// </summary>
public sealed class SocketInput : IDisposable
{
    private Socket _socket;
    private readonly int _maxFrame;
    private byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // one past the last received byte

    public SocketInput(Socket socket, int maxFrameBytes, int initialSize = 8192)
    {
        _socket = socket;
        _maxFrame = maxFrameBytes;
        _initialSize = initialSize;
        _buffer = ArrayPool<byte>.Shared.Rent(initialSize);
    }

    /// <summary>Reuses this input (and its buffer) for another connection.</summary>
    public void Attach(Socket socket)
    {
        _socket = socket;
        _start = _end = 0;
        Shrink();
    }

    /// <summary>Drops a buffer grown for a large frame (a parked worker must not keep it); true when it did.</summary>
    public bool Shrink()
    {
        if (_buffer.Length <= RetainedBytes) return false;
        Replace(ArrayPool<byte>.Shared.Rent(_initialSize));
        return true;
    }

    /// <summary>Buffers up to this size come from (and return to) the shared pool and stay with the worker;
    /// larger ones are plain arrays the GC reclaims once the connection is done.</summary>
    private const int RetainedBytes = 1024 * 1024;
    private readonly int _initialSize;

    private void Replace(byte[] next)
    {
        var old = _buffer;
        _buffer = next;
        if (old.Length > 0 && old.Length <= RetainedBytes) ArrayPool<byte>.Shared.Return(old);
    }

    /// <summary>Number of receive calls that returned data (for tests and metrics).</summary>
    public long Receives { get; private set; }

    /// <summary>Reads one length-prefixed frame. Returns false on a clean EOF before the first byte.</summary>
    /// <exception cref="ProtocolViolationException">oversized frame or EOF inside a frame.</exception>
    public bool TryReadFrame(out ReadOnlyMemory<byte> frame)
    {
        if (!Fill(4))
        {
            frame = default;
            if (_end - _start == 0) return false;
            throw new ProtocolViolationException("connection closed inside a frame header");
        }
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start, 4));
        if (len > (uint)_maxFrame)
            throw new ProtocolViolationException($"frame of {len} bytes exceeds the maximum of {_maxFrame}");
        if (!Fill(4 + (int)len))
            throw new ProtocolViolationException("connection closed inside a frame");
        frame = _buffer.AsMemory(_start + 4, (int)len);
        _start += 4 + (int)len;
        return true;
    }

    /// <summary>The bytes received but not yet consumed (for stream protocols such as MsgPack:1).</summary>
    public ReadOnlyMemory<byte> Buffered => _buffer.AsMemory(_start, _end - _start);

    public void Consume(int count) => _start += count;

    /// <summary>Receives at least one more byte into the buffer. False on EOF.</summary>
    public bool ReceiveMore()
    {
        int have = _end - _start;
        if (have >= _maxFrame)
            throw new ProtocolViolationException($"message exceeds the maximum of {_maxFrame} bytes");
        Compact(have + 1);
        int n = _socket.Receive(_buffer, _end, _buffer.Length - _end, SocketFlags.None);
        if (n <= 0) return false;
        _end += n;
        Receives++;
        return true;
    }

    public int MaxMessageBytes => _maxFrame;

    /// <summary>Reads and discards until the peer closes (after kong.response.exit Kong never answers).</summary>
    public void DrainToEof()
    {
        _start = _end = 0;
        while (true)
        {
            int n = _socket.Receive(_buffer, 0, _buffer.Length, SocketFlags.None);
            if (n <= 0) return;
        }
    }

    private bool Fill(int needed)
    {
        while (_end - _start < needed)
        {
            Compact(needed);
            int n = _socket.Receive(_buffer, _end, _buffer.Length - _end, SocketFlags.None);
            if (n <= 0) return false;
            _end += n;
            Receives++;
        }
        return true;
    }

    /// <summary>Makes room for <paramref name="needed"/> bytes counted from the first unconsumed byte.</summary>
    private void Compact(int needed)
    {
        if (_start == _end) _start = _end = 0;
        if (_start + needed <= _buffer.Length && _end < _buffer.Length) return;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_buffer.Length < needed || _end == _buffer.Length) Grow(Math.Max(needed, _buffer.Length * 2));
    }

    private void Grow(int size)
    {
        var bigger = size <= RetainedBytes ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        Buffer.BlockCopy(_buffer, _start, bigger, 0, _end - _start);
        _end -= _start;
        _start = 0;
        Replace(bigger);
    }

    public void Dispose() => Replace([]);
}
