using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;

namespace Kong.PluginServer.Testing.Tests;

/// <summary>A received RpcCall and the connection it came on.</summary>
internal sealed record PbReceived(int Connection, RpcCall Call);

/// <summary>
/// A tiny ProtoBuf:1 plugin server for testing the simulator (not the project's server): it answers
/// StartInstance/CloseInstance, runs <see cref="Handler"/> for HandleEvent (which makes PDK calls through
/// <see cref="FakePbEvent"/>), then writes the end marker and RpcReturn. Hooks make it misbehave.
/// </summary>
internal sealed class FakePbServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentBag<Socket> _sockets = new();
    private int _nextConnection;
    private int _nextInstance;

    public string SocketPath { get; }
    public Func<FakePbEvent, Task> Handler { get; set; } = _ => Task.CompletedTask;
    /// <summary>Instance id for a StartInstance config; default: 1, 2, 3...</summary>
    public Func<string, int>? InstanceIdFor { get; set; }
    public ConcurrentDictionary<int, string> Instances { get; } = new();
    public ConcurrentQueue<PbReceived> Calls { get; } = new();
    /// <summary>Every byte received, per connection.</summary>
    public ConcurrentDictionary<int, List<byte>> Received { get; } = new();
    /// <summary>Reply with this sequence instead of the echo (null: echo).</summary>
    public Func<RpcCall, long?>? SequenceOverride { get; set; }
    /// <summary>Close the connection instead of handling this call.</summary>
    public Func<RpcCall, bool>? CloseInsteadOfReply { get; set; }
    /// <summary>Reply frames that never came: the connection hit EOF while a PDK call waited for its reply.</summary>
    public int EofWhileWaitingForReply => _eofWaiting;
    private int _eofWaiting;
    public int Connections => _nextConnection;

    public FakePbServer()
    {
        SocketPath = Path.Combine(Path.GetTempPath(), $"kst-{Guid.NewGuid():N}.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(512);
        _acceptLoop = AcceptLoop();
    }

    public IEnumerable<RpcCall> CallsOf(RpcCall.CallOneofCase kind) => Calls.Select(c => c.Call).Where(c => c.CallCase == kind);

    private async Task AcceptLoop()
    {
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var s = await _listener.AcceptAsync(_cts.Token);
                _sockets.Add(s);
                int id = Interlocked.Increment(ref _nextConnection);
                _ = Task.Run(() => ServeConnection(s, id));
            }
        }
        catch (Exception) when (_cts.IsCancellationRequested) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }

    private async Task ServeConnection(Socket s, int conn)
    {
        var io = new FrameIo(s, Received.GetOrAdd(conn, _ => new List<byte>()));
        try
        {
            while (true)
            {
                var frame = await io.ReadFrameAsync();
                if (frame is null) return;
                var call = RpcCall.Parser.ParseFrom(frame);
                Calls.Enqueue(new PbReceived(conn, call));
                if (CloseInsteadOfReply?.Invoke(call) == true) return;
                long seq = SequenceOverride?.Invoke(call) ?? call.Sequence;
                switch (call.CallCase)
                {
                    case RpcCall.CallOneofCase.CmdStartInstance:
                    {
                        var config = call.CmdStartInstance.Config.ToStringUtf8();
                        int id = InstanceIdFor?.Invoke(config) ?? Interlocked.Increment(ref _nextInstance);
                        Instances[id] = config;
                        await io.WriteFramesAsync(new RpcReturn
                        {
                            Sequence = seq,
                            InstanceStatus = new InstanceStatus { Name = call.CmdStartInstance.Name, InstanceId = id, StartedAt = 1700000000 },
                        }.ToByteArray());
                        break;
                    }
                    case RpcCall.CallOneofCase.CmdCloseInstance:
                        Instances.TryRemove(call.CmdCloseInstance.InstanceId, out _);
                        await io.WriteFramesAsync(new RpcReturn
                        {
                            Sequence = seq,
                            InstanceStatus = new InstanceStatus { InstanceId = call.CmdCloseInstance.InstanceId },
                        }.ToByteArray());
                        break;
                    case RpcCall.CallOneofCase.CmdHandleEvent:
                    {
                        var he = call.CmdHandleEvent;
                        if (!Instances.TryGetValue(he.InstanceId, out var config)) return; // unknown instance: close before anything
                        var ev = new FakePbEvent(io, he.InstanceId, he.EventName, config, conn);
                        try
                        {
                            await Handler(ev);
                        }
                        catch (EndOfStreamException)
                        {
                            Interlocked.Increment(ref _eofWaiting);
                            return;
                        }
                        if (ev.Exited)
                        {
                            if (await io.ReadFrameAsync() is null) Interlocked.Increment(ref _eofWaiting);
                            return;
                        }
                        if (ev.CloseAfterHandler) return;
                        if (ev.SkipEndMarker) await io.WriteFramesAsync(new RpcReturn { Sequence = seq }.ToByteArray());
                        else await io.WriteFramesAsync(Array.Empty<byte>(), new RpcReturn { Sequence = seq }.ToByteArray());
                        break;
                    }
                    default:
                        await io.WriteFramesAsync(Array.Empty<byte>());
                        break;
                }
            }
        }
        catch (Exception) { }
        finally
        {
            try { s.Dispose(); } catch (Exception) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Dispose();
        foreach (var s in _sockets) { try { s.Dispose(); } catch (Exception) { } }
        try { await _acceptLoop; } catch (Exception) { }
        try { File.Delete(SocketPath); } catch (Exception) { }
    }
}

/// <summary>Exact-length frame reads and one-write frame writes over a socket; records received bytes.</summary>
internal sealed class FrameIo(Socket socket, List<byte> received)
{
    private async Task<bool> ReadExactAsync(byte[] buf)
    {
        int off = 0;
        while (off < buf.Length)
        {
            int n;
            try { n = await socket.ReceiveAsync(buf.AsMemory(off), SocketFlags.None); }
            catch (SocketException) { return false; }
            if (n == 0) return false;
            lock (received) received.AddRange(buf.AsSpan(off, n).ToArray());
            off += n;
        }
        return true;
    }

    /// <summary>One frame, or null on EOF.</summary>
    public async Task<byte[]?> ReadFrameAsync()
    {
        var len = new byte[4];
        if (!await ReadExactAsync(len)) return null;
        var body = new byte[BinaryPrimitives.ReadUInt32LittleEndian(len)];
        if (body.Length > 0 && !await ReadExactAsync(body)) return null;
        return body;
    }

    /// <summary>Several frames in one write.</summary>
    public async Task WriteFramesAsync(params byte[][] payloads)
    {
        var all = new List<byte>();
        foreach (var p in payloads)
        {
            var len = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)p.Length);
            all.AddRange(len);
            all.AddRange(p);
        }
        await socket.SendAsync(all.ToArray(), SocketFlags.None);
    }
}

/// <summary>The server side of one HandleEvent: the handler's PDK calls.</summary>
internal sealed class FakePbEvent(FrameIo io, int instanceId, string phase, string config, int connection)
{
    public int InstanceId { get; } = instanceId;
    public string Phase { get; } = phase;
    public string Config { get; } = config;
    public int Connection { get; } = connection;
    public bool Exited { get; private set; }
    public bool SkipEndMarker { get; set; }
    public bool CloseAfterHandler { get; set; }

    /// <summary>Sends the method-name and argument frames (one write) and reads the reply frame.</summary>
    /// <exception cref="EndOfStreamException">Kong closed instead of replying.</exception>
    public async Task<byte[]> CallAsync(string method, IMessage? arg = null)
    {
        await io.WriteFramesAsync(System.Text.Encoding.ASCII.GetBytes(method), arg?.ToByteArray() ?? Array.Empty<byte>());
        return await io.ReadFrameAsync() ?? throw new EndOfStreamException(method);
    }

    public async Task<T> CallAsync<T>(string method, IMessage? arg, MessageParser<T> parser) where T : IMessage<T> =>
        parser.ParseFrom(await CallAsync(method, arg));

    /// <summary>kong.response.exit: writes the step; Kong never replies.</summary>
    public async Task ExitAsync(ExitArgs args)
    {
        Exited = true;
        await io.WriteFramesAsync(System.Text.Encoding.ASCII.GetBytes("kong.response.exit"), args.ToByteArray());
    }
}
