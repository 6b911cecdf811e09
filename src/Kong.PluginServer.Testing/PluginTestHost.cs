using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Testing;

/// <summary>
/// Serves a plugin in-process on a temporary Unix socket and plays Kong against it: the one-liner for a
/// plugin's unit tests. <c>await using var host = PluginTestHost.Start(new MyPlugin());</c> then
/// <c>host.Kong.AddPlugin(...)</c> and <c>host.Kong.Worker(0).RunAsync(...)</c>.
/// </summary>
public sealed class PluginTestHost : IAsyncDisposable
{
    private readonly string _dir;

    private PluginTestHost(KongPluginServer server, KongSimulator kong, string dir)
    {
        Server = server;
        Kong = kong;
        _dir = dir;
    }

    public KongPluginServer Server { get; }
    public KongSimulator Kong { get; }
    public string SocketPath => Server.Options.SocketPath;

    public static PluginTestHost Start(IKongPlugin plugin, KongProtocol protocol = KongProtocol.ProtoBuf, int workers = 1,
        KongSimulatorOptions? simulator = null, Func<ServerOptions, ServerOptions>? configure = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "kps-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var options = new ServerOptions
        {
            SocketPath = Path.Combine(dir, plugin.Info.Name + ".socket"),
            Protocol = protocol == KongProtocol.ProtoBuf ? PluginDump.ProtoBuf : PluginDump.MsgPack,
            Log = ServerLog.Silent,
        };
        if (configure is not null) options = configure(options);
        var server = new KongPluginServer(plugin, options);
        server.Start();
        var kong = new KongSimulator(options.SocketPath, protocol, plugin.Info.Name, workers, simulator);
        return new PluginTestHost(server, kong, dir);
    }

    public async ValueTask DisposeAsync()
    {
        await Kong.DisposeAsync();
        await Server.StopAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
