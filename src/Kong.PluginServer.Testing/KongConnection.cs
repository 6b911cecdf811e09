using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Net.Sockets;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

/// <summary>
/// A socket failure, carrying the error string Kong's cosocket would report: <c>"closed"</c> (EOF),
/// <c>"timeout"</c>, <c>"connection reset by peer"</c>, <c>"connection refused"</c>, <c>"no such file or directory"</c>, ...
/// </summary>
public sealed class KongSocketException(string kongError, Exception? inner = null)
    : IOException(kongError, inner)
{
    /// <summary>The cosocket error string.</summary>
    public string KongError { get; } = kongError;
}

/// <summary>
/// One Kong-side connection to a plugin server's Unix socket. The simulator uses it internally; tests use it
/// directly for byte-exact and hostile scenarios: send arbitrary frames or bytes, read frames with a timeout,
/// observe EOF. Frames are written the way Kong writes them: the 4-byte little-endian length, then the payload,
/// as two separate writes (an empty payload is not written at all). Reads are exact-length.
/// Not thread-safe: one flow at a time, like an nginx cosocket.
/// </summary>
public sealed class KongConnection : IAsyncDisposable, IDisposable
{
    private readonly Socket _socket;
    private byte[] _buf = new byte[16 * 1024];
    private int _start, _end;
    private readonly byte[] _len = new byte[4];
    private byte[] _wbuf = new byte[1024];
    private CancellationTokenSource _cts = new();
    private bool _disposed;

    private KongConnection(Socket socket, TimeSpan timeout)
    {
        _socket = socket;
        Timeout = timeout;
    }

    /// <summary>Per-operation timeout (connect, each send, each receive). Kong's cosocket default is 60 s.</summary>
    public TimeSpan Timeout { get; set; }
    /// <summary>Complete frames (ProtoBuf) or msgpack objects read so far.</summary>
    public long FramesReceived { get; private set; }
    /// <summary>Socket receives that returned data (best-effort count of the peer's writes).</summary>
    public long ReceiveBatches { get; private set; }
    /// <summary>Socket writes made so far.</summary>
    public long WritesSent { get; private set; }
    /// <summary>Bytes received but not consumed yet.</summary>
    public int BufferedBytes => _end - _start;
    /// <summary>True once an operation failed; such a connection is never pooled.</summary>
    public bool IsBroken { get; private set; }

    internal long PooledAtTicks { get; set; }

    /// <summary>Pool state for <see cref="KongSimulatorOptions.NginxPool"/>: 0 in use, 1 pooled, 2 dropped by the watcher.</summary>
    internal int PoolState;

    /// <summary>True when the socket is readable (the server closed or shut its side, or sent stray bytes); false while quiet.</summary>
    internal bool TurnedReadable()
    {
        try { return _disposed || _socket.Poll(0, SelectMode.SelectRead); }
        catch (Exception) { return true; }
    }

    /// <summary>Connects to the plugin server's socket.</summary>
    /// <exception cref="KongSocketException">Connect failed ("no such file or directory", "connection refused", "timeout").</exception>
    public static async Task<KongConnection> ConnectAsync(string socketPath, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var t = timeout ?? TimeSpan.FromSeconds(60);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (t != System.Threading.Timeout.InfiniteTimeSpan) cts.CancelAfter(t);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            if (e is OperationCanceledException) throw new KongSocketException("timeout", e);
            if (e is SocketException se)
            {
                if (!File.Exists(socketPath)) throw new KongSocketException("no such file or directory", e);
                throw new KongSocketException(MapError(se), e);
            }
            throw;
        }
        return new KongConnection(socket, t);
    }

    // ------------------------------------------------------------------ writing

    /// <summary>Sends one frame as Kong does: the uint32-LE length, then the payload, as two writes.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendFrameAsync(ReadOnlyMemory<byte> payload)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_len, (uint)payload.Length);
        await SendRawAsync(_len).ConfigureAwait(false);
        if (!payload.IsEmpty) await SendRawAsync(payload).ConfigureAwait(false);
    }

    /// <summary>Serializes <paramref name="message"/> and sends it as one frame (two writes).</summary>
    public ValueTask SendFrameAsync(IMessage message) => SendFrameAsync(Serialize(message));

    internal ReadOnlyMemory<byte> Serialize(IMessage message)
    {
        int size = message.CalculateSize();
        if (_wbuf.Length < size) _wbuf = new byte[Math.Max(size, _wbuf.Length * 2)];
        message.WriteTo(_wbuf.AsSpan(0, size));
        return new ReadOnlyMemory<byte>(_wbuf, 0, size);
    }

    /// <summary>Writes <paramref name="bytes"/> with one send call (looping only on a partial write).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        var token = Arm();
        WritesSent++;
        try
        {
            while (!bytes.IsEmpty)
            {
                int n = await _socket.SendAsync(bytes, SocketFlags.None, token).ConfigureAwait(false);
                bytes = bytes[n..];
            }
        }
        catch (Exception e) when (e is not KongSocketException)
        {
            throw Fail(e);
        }
    }

    /// <summary>Sends one msgpack value encoded as Kong's lua-MessagePack would (one write).</summary>
    public ValueTask SendMsgPackAsync(object? value) => SendRawAsync(MsgPackCodec.Encode(value));

    /// <summary>Sends a msgpack-rpc request <c>[0, msgid, method, [args...]]</c> (one write).</summary>
    public ValueTask SendMsgPackRequestAsync(long msgId, string method, params object?[] args) =>
        SendRawAsync(MsgPackCodec.EncodeRequest(msgId, method, args));

    // ------------------------------------------------------------------ reading

    /// <summary>Reads one frame (4-byte LE length, then exactly that many bytes) and returns a copy of the payload.</summary>
    /// <exception cref="KongSocketException">"closed", "timeout", ...</exception>
    public async ValueTask<byte[]> ReadFrameAsync() => (await ReadFrameViewAsync().ConfigureAwait(false)).ToArray();

    /// <summary>Reads one frame and parses it as an <see cref="RpcReturn"/>.</summary>
    internal async ValueTask<RpcReturn> ReadRpcReturnAsync() => RpcReturn.Parser.ParseFrom((await ReadFrameViewAsync().ConfigureAwait(false)).Span);

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public async ValueTask<byte[]> ReadExactAsync(int count)
    {
        await FillAsync(count).ConfigureAwait(false);
        var result = _buf.AsSpan(_start, count).ToArray();
        _start += count;
        return result;
    }

    /// <summary>Reads one frame; the memory is valid until the next read.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<ReadOnlyMemory<byte>> ReadFrameViewAsync()
    {
        if (_end - _start < 4) await FillAsync(4).ConfigureAwait(false);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start, 4));
        if (len > int.MaxValue - 8) throw Fail(new KongSocketException("frame too large"));
        _start += 4;
        if (_end - _start < (int)len) await FillAsync((int)len).ConfigureAwait(false);
        var mem = new ReadOnlyMemory<byte>(_buf, _start, (int)len);
        _start += (int)len;
        FramesReceived++;
        return mem;
    }

    /// <summary>Reads the next msgpack object and decodes it into Lua-like values (null, bool, double, string,
    /// byte[] for bin, List&lt;object?&gt;, Dictionary&lt;string, object?&gt;). Unconsumed bytes stay buffered.</summary>
    public async ValueTask<object?> ReadMsgPackAsync()
    {
        while (true)
        {
            if (_end > _start && MsgPackCodec.TryDecode(new ReadOnlyMemory<byte>(_buf, _start, _end - _start), out var v, out int used))
            {
                _start += used;
                FramesReceived++;
                return v;
            }
            await ReceiveMoreAsync(_buf.Length).ConfigureAwait(false);
        }
    }

    /// <summary>Like Kong's mp_rpc: a fresh unpacker over <c>receiveany(4096)</c>; bytes after the object are dropped.</summary>
    internal async ValueTask<object?> ReadMsgPackFreshAsync()
    {
        _start = _end = 0;
        while (true)
        {
            await ReceiveMoreAsync(4096).ConfigureAwait(false);
            if (MsgPackCodec.TryDecode(new ReadOnlyMemory<byte>(_buf, _start, _end - _start), out var v, out int used))
            {
                _start += used;
                FramesReceived++;
                return v;
            }
        }
    }

    /// <summary>For a following message in the same receive (e.g. after a notification): decode from what is buffered first.</summary>
    internal async ValueTask<object?> ReadMsgPackContinueAsync()
    {
        while (true)
        {
            if (_end > _start && MsgPackCodec.TryDecode(new ReadOnlyMemory<byte>(_buf, _start, _end - _start), out var v, out int used))
            {
                _start += used;
                FramesReceived++;
                return v;
            }
            await ReceiveMoreAsync(4096).ConfigureAwait(false);
        }
    }

    internal void DiscardBuffered() => _start = _end = 0;

    /// <summary>Waits until the peer closes the connection; true on EOF (or reset), false on timeout. Data that arrives meanwhile is buffered.</summary>
    public async ValueTask<bool> WaitForCloseAsync(TimeSpan timeout)
    {
        var saved = Timeout;
        Timeout = timeout;
        try
        {
            while (true) await ReceiveMoreAsync(_buf.Length).ConfigureAwait(false);
        }
        catch (KongSocketException e)
        {
            return e.KongError != "timeout";
        }
        finally
        {
            Timeout = saved;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(int needed)
    {
        while (_end - _start < needed) await ReceiveMoreAsync(int.MaxValue, needed).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceiveMoreAsync(int maxChunk, int needed = 0)
    {
        if (_start == _end) _start = _end = 0;
        int live = _end - _start;
        int required = Math.Max(needed, live + 1); // room for at least one more byte
        if (_start + required > _buf.Length)
        {
            var target = required <= _buf.Length ? _buf : new byte[Math.Max(required, _buf.Length * 2)];
            Buffer.BlockCopy(_buf, _start, target, 0, live);
            _buf = target;
            _start = 0;
            _end = live;
        }
        int room = Math.Min(_buf.Length - _end, maxChunk);
        var token = Arm();
        int n;
        try
        {
            n = await _socket.ReceiveAsync(new Memory<byte>(_buf, _end, room), SocketFlags.None, token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
        if (n == 0) throw Fail(new KongSocketException("closed"));
        _end += n;
        ReceiveBatches++;
    }

    private CancellationToken Arm()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_cts.TryReset())
        {
            _cts.Dispose();
            _cts = new CancellationTokenSource();
        }
        if (Timeout != System.Threading.Timeout.InfiniteTimeSpan) _cts.CancelAfter(Timeout);
        return _cts.Token;
    }

    private KongSocketException Fail(Exception e)
    {
        IsBroken = true;
        return e switch
        {
            KongSocketException k => k,
            OperationCanceledException => new KongSocketException("timeout", e),
            SocketException se => new KongSocketException(MapError(se), e),
            ObjectDisposedException => new KongSocketException("closed", e),
            _ => new KongSocketException(e.Message, e),
        };
    }

    private static string MapError(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionReset => "connection reset by peer",
        SocketError.ConnectionRefused => "connection refused",
        SocketError.Shutdown => "broken pipe",
        SocketError.TimedOut => "timeout",
        SocketError.AddressNotAvailable => "no such file or directory",
        _ => e.Message.ToLowerInvariant(),
    };

    /// <summary>What nginx checks on an idle keep-alive connection: it must have no unread data and the peer must not have closed it.</summary>
    internal bool IsReusable()
    {
        if (_disposed || IsBroken || _end != _start) return false;
        try
        {
            return !_socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary>Closes the socket (the peer sees EOF).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _socket.Dispose(); } catch (ObjectDisposedException) { }
        _cts.Dispose();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
