using System.Buffers;
using System.Collections;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;
using Kong.PluginServer.Testing.Internal;
using MessagePack;

namespace Kong.PluginServer.Testing.Tests;

/// <summary>One msgpack-rpc request Kong sent, with the exact bytes.</summary>
internal sealed record MpRequest(int Connection, long MsgId, string Method, List<object?> Params, byte[] Raw);

/// <summary>
/// A tiny MsgPack:1 plugin server (like the Python/JS PDKs): global events keyed by EventId, every Step* method
/// treated alike, "ret" at the end, "no plugin instance N" for an unknown instance.
/// </summary>
internal sealed class FakeMpServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentBag<Socket> _sockets = new();
    private readonly ConcurrentDictionary<long, FakeMpEvent> _events = new();
    private int _nextConnection;
    private int _nextInstance;
    private int _nextEvent;

    public string SocketPath { get; }
    public Func<FakeMpEvent, Task> Handler { get; set; } = _ => Task.CompletedTask;
    public ConcurrentDictionary<int, string> Instances { get; } = new();
    public ConcurrentQueue<MpRequest> Requests { get; } = new();
    /// <summary>Force an error string for a request (null: handle normally).</summary>
    public Func<MpRequest, string?>? ErrorFor { get; set; }
    /// <summary>Bytes written (in the same write) before each response, e.g. a serverPid notification.</summary>
    public Func<MpRequest, byte[]?>? Before { get; set; }
    /// <summary>Bytes written (in the same write) after each response.</summary>
    public Func<MpRequest, byte[]?>? After { get; set; }
    public int Connections => _nextConnection;

    public FakeMpServer()
    {
        SocketPath = Path.Combine(Path.GetTempPath(), $"kst-{Guid.NewGuid():N}.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(512);
        _acceptLoop = AcceptLoop();
    }

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
        catch (Exception) { }
    }

    private async Task ServeConnection(Socket s, int conn)
    {
        var buf = new byte[64 * 1024];
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                if (end > start && MsgPackCodec.TryDecode(buf.AsMemory(start, end - start), out var obj, out int used))
                {
                    var raw = buf.AsSpan(start, used).ToArray();
                    start += used;
                    var msg = (List<object?>)obj!;
                    var req = new MpRequest(conn, (long)(double)msg[1]!, (string)msg[2]!, (List<object?>)msg[3]!, raw);
                    Requests.Enqueue(req);
                    var (err, result) = await HandleAsync(req);
                    var output = new List<byte>();
                    if (Before?.Invoke(req) is { } pre) output.AddRange(pre);
                    output.AddRange(Encode(new List<object?> { 1L, req.MsgId, err, result }));
                    if (After?.Invoke(req) is { } post) output.AddRange(post);
                    await s.SendAsync(output.ToArray(), SocketFlags.None);
                    continue;
                }
                if (start == end) start = end = 0;
                int n = await s.ReceiveAsync(buf.AsMemory(end), SocketFlags.None);
                if (n == 0) return;
                end += n;
            }
        }
        catch (Exception) { }
        finally
        {
            try { s.Dispose(); } catch (Exception) { }
        }
    }

    private async Task<(string? Error, object? Result)> HandleAsync(MpRequest req)
    {
        if (ErrorFor?.Invoke(req) is { } forced) return (forced, null);
        var p0 = req.Params.Count > 0 ? req.Params[0] : null;
        switch (req.Method)
        {
            case "plugin.StartInstance":
            {
                var m = (Dictionary<string, object?>)p0!;
                int id = Interlocked.Increment(ref _nextInstance);
                Instances[id] = (string)m["Config"]!;
                return (null, new Dictionary<string, object?> { ["Name"] = m["Name"], ["Id"] = (long)id, ["Config"] = null, ["StartTime"] = 1700000000L });
            }
            case "plugin.CloseInstance":
                Instances.TryRemove((int)(double)p0!, out _);
                return (null, new Dictionary<string, object?> { ["Id"] = (long)(double)p0! });
            case "plugin.HandleEvent":
            {
                var m = (Dictionary<string, object?>)p0!;
                int instance = (int)(double)m["InstanceId"]!;
                if (!Instances.TryGetValue(instance, out var config)) return ($"no plugin instance #{instance}", null);
                long eventId = Interlocked.Increment(ref _nextEvent);
                var ev = new FakeMpEvent(eventId, instance, (string)m["EventName"]!, config);
                _events[eventId] = ev;
                _ = Task.Run(async () =>
                {
                    try { await Handler(ev); } catch (Exception) { }
                    ev.Finish();
                });
                return (null, new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = await ev.NextCallbackAsync() });
            }
            default:
                if (req.Method.StartsWith("plugin.Step", StringComparison.Ordinal))
                {
                    var m = (Dictionary<string, object?>)p0!;
                    long eventId = (long)(double)m["EventId"]!;
                    if (!_events.TryGetValue(eventId, out var ev)) return ($"event id {eventId} not found", null);
                    ev.Deliver(req.Method, m.ContainsKey("Data"), m.GetValueOrDefault("Data"));
                    var next = await ev.NextCallbackAsync();
                    if (next is "ret") _events.TryRemove(eventId, out _);
                    return (null, new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = next });
                }
                return ($"unknown method {req.Method}", null);
        }
    }

    /// <summary>Standard msgpack (as a server's library writes it, str8 included).</summary>
    public static byte[] Encode(object? v)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        Write(ref w, v);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(ref MessagePackWriter w, object? v)
    {
        switch (v)
        {
            case null: w.WriteNil(); break;
            case bool b: w.Write(b); break;
            case int i: w.Write(i); break;
            case long l: w.Write(l); break;
            case double d: w.Write(d); break;
            case string s: w.Write(s); break;
            case byte[] bytes: w.Write(bytes); break;
            case IDictionary d:
                w.WriteMapHeader(d.Count);
                foreach (DictionaryEntry e in d) { Write(ref w, e.Key); Write(ref w, e.Value); }
                break;
            case IList l:
                w.WriteArrayHeader(l.Count);
                foreach (var item in l) Write(ref w, item);
                break;
            default: throw new NotSupportedException(v.GetType().Name);
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

/// <summary>The server side of one MsgPack event.</summary>
internal sealed class FakeMpEvent(long eventId, int instanceId, string phase, string config)
{
    private readonly Channel<object?> _toKong = Channel.CreateUnbounded<object?>();
    private readonly Channel<(string Step, bool HasData, object? Data)> _fromKong = Channel.CreateUnbounded<(string, bool, object?)>();
    private bool _exited;

    public long EventId { get; } = eventId;
    public int InstanceId { get; } = instanceId;
    public string Phase { get; } = phase;
    public string Config { get; } = config;
    /// <summary>The Step method and whether Data was present, for each answered call.</summary>
    public List<(string Step, bool HasData)> Steps { get; } = new();

    public async Task<object?> CallAsync(string method, params object?[] args)
    {
        await _toKong.Writer.WriteAsync(new Dictionary<string, object?> { ["Method"] = method, ["Args"] = args.ToList() });
        var (step, has, data) = await _fromKong.Reader.ReadAsync();
        lock (Steps) Steps.Add((step, has));
        return data;
    }

    /// <summary>kong.response.exit: Kong never sends a Step back, so do not wait.</summary>
    public async Task ExitAsync(int status, string body, Dictionary<string, object?>? headers = null)
    {
        _exited = true;
        await _toKong.Writer.WriteAsync(new Dictionary<string, object?> { ["Method"] = "kong.response.exit", ["Args"] = new List<object?> { (long)status, body, headers } });
    }

    internal void Deliver(string step, bool hasData, object? data) => _fromKong.Writer.TryWrite((step, hasData, data));
    internal async Task<object?> NextCallbackAsync() => await _toKong.Reader.ReadAsync();
    internal void Finish()
    {
        if (!_exited) _toKong.Writer.TryWrite("ret");
    }
}
