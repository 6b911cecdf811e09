using System.Runtime.InteropServices;
using Kong.PluginServer;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace GitLabCiAuth.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            return Run(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"gitlab-ci-auth: {e.Message}");
            Console.Error.WriteLine("run 'gitlab-ci-auth --help' for the options");
            return 2;
        }
    }

    private static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "check")
            return Check.CheckCommand.RunAsync(args[1..], Console.Out, Console.Error, Console.In).GetAwaiter().GetResult();
        if (args.Length > 0 && args[0] == "demo")
        {
            var demo = HostOptions.Parse(args[1..]);
            return Demo.DemoCommand.RunAsync(Console.Out, demo.Protocol).GetAwaiter().GetResult();
        }
        var options = HostOptions.Parse(args);
        if (options.Help) { Console.Out.WriteLine(HostOptions.Usage); return 0; }
        if (options.ShowVersion) { Console.Out.WriteLine(PluginCatalog.Version); return 0; }

        var plugin = PluginCatalog.Create(options.Plugin);
        if (options.Dump)
        {
            Console.Out.WriteLine(PluginDump.Render(plugin.Info, options.Protocol));
            return 0;
        }
        return Serve(plugin, options);
    }

    private static int Serve(IKongPlugin plugin, HostOptions options)
    {
        var log = new ServerLog(Console.Error, options.LogLevel);
        // the key sources shared by every instance log through the server: a key source going bad is an error line
        GitLabCiAuth.Keys.JwksKeyStore.Shared.Log = (level, message) => log.Write(level switch
        {
            GitLabCiAuth.Keys.KeyLogLevel.Debug => LogLevel.Debug,
            GitLabCiAuth.Keys.KeyLogLevel.Information => LogLevel.Info,
            GitLabCiAuth.Keys.KeyLogLevel.Notice => LogLevel.Notice,
            GitLabCiAuth.Keys.KeyLogLevel.Warning => LogLevel.Warn,
            _ => LogLevel.Error,
        }, message);
        Metrics.MetricsEndpoint? metrics = null;
        if (options.MetricsListen is not null)
        {
            try { metrics = new Metrics.MetricsEndpoint(options.MetricsListen, PluginCatalog.Version, options.Protocol); }
            catch (Exception e) when (e is System.Net.HttpListenerException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                log.Error($"cannot serve metrics on {options.MetricsListen}: {e.Message}");
                return 1;
            }
            log.Info($"metrics at {metrics.Endpoint}");
        }
        KongPluginServer server;
        try
        {
            server = new KongPluginServer(plugin, options.ToServerOptions(log, metrics));
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            log.Error($"cannot listen on {options.SocketPath}: {e.Message}");
            metrics?.Dispose();
            return 1;
        }
        metrics?.Attach(server);

        using var stop = new ManualResetEventSlim();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });
        server.Start();
        stop.Wait();
        log.Info("signal received: stopping");
        server.StopAsync().GetAwaiter().GetResult();
        metrics?.Dispose();
        return 0;
    }
}
