using System.Net.Sockets;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Bounded waits (a hang fails the test instead of blocking CI) and host construction for the server tests.</summary>
internal static class T
{
    /// <summary>The bound for anything that should happen promptly; generous, never an assertion about speed.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    /// <summary>How long a raw connection is watched to show that nothing arrives (absence, not a speed check).</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    public static Task<TResult> Within<TResult>(this Task<TResult> task) => task.WaitAsync(Bound);
    public static Task Within(this Task task) => task.WaitAsync(Bound);
    public static Task<TResult> Within<TResult>(this ValueTask<TResult> task) => task.AsTask().WaitAsync(Bound);
    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Bound);

    /// <summary>Polls until <paramref name="condition"/> holds; fails the test after <see cref="Bound"/>.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("timed out waiting until " + what);
            await Task.Delay(5);
        }
    }

    public static readonly TheoryData<KongProtocol> Protocols = [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    /// <summary>A host whose simulated Kong gives up after 10 s instead of Kong's 60 s.</summary>
    public static PluginTestHost Host(IKongPlugin plugin, KongProtocol protocol = KongProtocol.ProtoBuf, int workers = 1,
        Func<ServerOptions, ServerOptions>? configure = null) =>
        PluginTestHost.Start(plugin, protocol, workers, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(10) }, configure);

    /// <summary>A copy of <paramref name="o"/> with some settings changed (ServerOptions is init-only).</summary>
    public static ServerOptions With(this ServerOptions o, int? maxFrameBytes = null, TimeSpan? idle = null, TimeSpan? shutdown = null,
        TimeSpan? spin = null) => new()
    {
        IoSpin = spin ?? o.IoSpin,
        IoThreads = o.IoThreads,
        SocketPath = o.SocketPath,
        Protocol = o.Protocol,
        SocketMode = o.SocketMode,
        MaxFrameBytes = maxFrameBytes ?? o.MaxFrameBytes,
        InstanceIdleTimeout = idle ?? o.InstanceIdleTimeout,
        ShutdownTimeout = shutdown ?? o.ShutdownTimeout,
        MaxConnections = o.MaxConnections,
        Log = o.Log,
    };

    public static Task<KongConnection> Connect(PluginTestHost host) => KongConnection.ConnectAsync(host.SocketPath, Bound);

    /// <summary>ProtoBuf: StartInstance on a raw connection; returns the instance id.</summary>
    public static async Task<int> StartPb(KongConnection c, long seq, string name, string configJson)
    {
        await c.SendFrameAsync(KongWire.StartInstance(seq, name, configJson)).Within();
        var reply = await c.ReadRpcReturnAsync().Within();
        Assert.Equal(seq, reply.Sequence);
        Assert.NotNull(reply.InstanceStatus);
        Assert.Equal(name, reply.InstanceStatus.Name);
        Assert.True(reply.InstanceStatus.InstanceId > 0);
        return reply.InstanceStatus.InstanceId;
    }

    /// <summary>MsgPack: one request, one response [1, msgid, error, result].</summary>
    public static async Task<(object? Error, object? Result)> CallMp(KongConnection c, long msgId, string method, object? param)
    {
        await c.SendMsgPackRequestAsync(msgId, method, param).Within();
        var msg = Assert.IsType<List<object?>>(await c.ReadMsgPackAsync().Within());
        Assert.Equal(4, msg.Count);
        Assert.Equal(1.0, msg[0]);
        Assert.Equal((double)msgId, msg[1]);
        return (msg[2], msg[3]);
    }

    /// <summary>MsgPack: StartInstance on a raw connection; returns the instance id.</summary>
    public static async Task<int> StartMp(KongConnection c, long msgId, string name, string configJson)
    {
        var (err, result) = await CallMp(c, msgId, "plugin.StartInstance", new Dictionary<string, object?> { ["Name"] = name, ["Config"] = configJson });
        Assert.Null(err);
        var status = Assert.IsType<Dictionary<string, object?>>(result);
        Assert.Equal(name, status["Name"]);
        var id = Assert.IsType<double>(status["Id"]);
        Assert.True(id > 0);
        return (int)id;
    }

    public static Task<int> Start(KongProtocol protocol, KongConnection c, string name, string configJson) =>
        protocol == KongProtocol.ProtoBuf ? StartPb(c, 2, name, configJson) : StartMp(c, 1, name, configJson);

    /// <summary>A plain socket for the cases KongConnection cannot express (half-close).</summary>
    public static async Task<Socket> RawSocket(PluginTestHost host)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(host.SocketPath)).WaitAsync(Bound);
        return s;
    }

    /// <summary>Reads until EOF; true when the peer closed (EOF or reset) with nothing sent, false on timeout or data.</summary>
    public static async Task<(bool Closed, int BytesReceived)> ReadToClose(Socket s)
    {
        var buf = new byte[4096];
        int total = 0;
        using var cts = new CancellationTokenSource(Bound);
        try
        {
            while (true)
            {
                int n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
                if (n == 0) return (true, total);
                total += n;
            }
        }
        catch (SocketException) { return (true, total); }
        catch (OperationCanceledException) { return (false, total); }
    }
}
