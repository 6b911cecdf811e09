using System.Buffers.Binary;
using System.Net.Sockets;
using Kong.PluginServer.Testing;
using MessagePack;

namespace Resilience.Tests.Infrastructure;

/// <summary>
/// A raw client connection to the server's Unix socket for hostile scenarios: arbitrary writes, half-close,
/// frame and msgpack reads with a bound, and "wait until the server closes". Every wait is bounded.
/// </summary>
public sealed class RawConn : IDisposable
{
    private readonly Socket _socket;
    private byte[] _buf = new byte[64 * 1024];
    private int _start, _end;
    private bool _eof;

    private RawConn(Socket socket) => _socket = socket;

    public long BytesSent { get; private set; }

    public static async Task<RawConn> ConnectAsync(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(path)).WaitAsync(Bounds.Hang);
            return new RawConn(s);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/>; false when the server already closed (EPIPE/reset): not an error for hostile input.</summary>
    public async Task<bool> SendAsync(ReadOnlyMemory<byte> bytes)
    {
        using var cts = new CancellationTokenSource(Bounds.Hang);
        try
        {
            while (!bytes.IsEmpty)
            {
                int n = await _socket.SendAsync(bytes, SocketFlags.None, cts.Token);
                bytes = bytes[n..];
                BytesSent += n;
            }
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"a write to the server did not complete within {Bounds.Hang} (the server stopped reading)");
        }
    }

    /// <summary>A ProtoBuf:1 frame as Kong writes it: length, then payload, as two writes.</summary>
    public async Task<bool> SendFrameAsync(byte[] payload)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)payload.Length);
        return await SendAsync(len) && (payload.Length == 0 || await SendAsync(payload));
    }

    /// <summary>Shuts down our sending side: the server sees EOF after everything sent.</summary>
    public void HalfClose()
    {
        try { _socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
    }

    /// <summary>Reads one frame; null on EOF (or reset) before or inside it.</summary>
    public async Task<byte[]?> ReadFrameAsync(TimeSpan? bound = null)
    {
        if (!await FillAsync(4, bound)) return null;
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start, 4));
        if (len > 64 * 1024 * 1024) throw new InvalidDataException($"the server sent a frame length of {len}");
        if (!await FillAsync(4 + (int)len, bound)) return null;
        var frame = _buf.AsSpan(_start + 4, (int)len).ToArray();
        _start += 4 + (int)len;
        return frame;
    }

    /// <summary>Reads one msgpack object decoded into Lua values; <paramref name="eof"/> true (and null) on EOF.</summary>
    public async Task<(object? Value, bool Eof)> ReadMsgPackAsync(TimeSpan? bound = null)
    {
        while (true)
        {
            if (_end > _start)
            {
                var mem = new ReadOnlyMemory<byte>(_buf, _start, _end - _start);
                var r = new MessagePackReader(mem);
                bool complete;
                try { r.Skip(); complete = true; }
                catch (EndOfStreamException) { complete = false; }
                if (complete)
                {
                    int used = (int)r.Consumed;
                    var value = KongWire.DecodeMsgPack(mem.Span[..used]);
                    _start += used;
                    return (value, false);
                }
            }
            if (!await ReceiveAsync(bound)) return (null, true);
        }
    }

    /// <summary>Drains until the server closes; true on EOF/reset, false when it is still open after the bound.</summary>
    public async Task<bool> WaitForCloseAsync(TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Bounds.Hang);
        try
        {
            while (true)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                _start = _end = 0;
                if (!await ReceiveAsync(left)) return true;
            }
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private async Task<bool> FillAsync(int needed, TimeSpan? bound)
    {
        while (_end - _start < needed)
            if (!await ReceiveAsync(bound)) return false;
        return true;
    }

    /// <summary>One receive; false on EOF or reset; <see cref="TimeoutException"/> after the bound.</summary>
    private async Task<bool> ReceiveAsync(TimeSpan? bound)
    {
        if (_eof) return false;
        if (_start == _end) _start = _end = 0;
        if (_end == _buf.Length)
        {
            int live = _end - _start;
            var target = live * 2 > _buf.Length ? new byte[_buf.Length * 2] : _buf;
            Buffer.BlockCopy(_buf, _start, target, 0, live);
            _buf = target;
            _start = 0;
            _end = live;
        }
        using var cts = new CancellationTokenSource(bound ?? Bounds.Hang);
        int n;
        try
        {
            n = await _socket.ReceiveAsync(_buf.AsMemory(_end), SocketFlags.None, cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the server sent nothing and did not close within {bound ?? Bounds.Hang}");
        }
        catch (SocketException)
        {
            _eof = true;
            return false;
        }
        if (n == 0) { _eof = true; return false; }
        _end += n;
        return true;
    }

    public void Dispose() => _socket.Dispose();
}
