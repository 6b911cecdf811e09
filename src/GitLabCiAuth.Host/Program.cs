using GitLabCiAuth.Host.Metrics;
using GitLabCiAuth.Keys;
using Kong.PluginServer;
using Kong.PluginServer.Hosting;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace GitLabCiAuth.Host;

/// <summary>
/// The `gitlab-ci-auth` executable: Kong's plugin server for gitlab-ci-auth (or, with `--plugin example`, for the
/// protocol-floor example), run by <see cref="KongPluginHost"/>, plus its own commands (`check`, `demo`) and options
/// (`--metrics-listen`, `--plugin`).
/// </summary>
public static class Program
{
    public const string ProgramName = "gitlab-ci-auth";

    public static int Main(string[] args)
    {
        string plugin = PluginCatalog.DefaultPlugin;
        string? metricsListen = null;
        HostOption[] options =
        [
            new("metrics-listen", "HOST:PORT", "serve Prometheus metrics at http://HOST:PORT/metrics (off by default)", v =>
            {
                MetricsEndpoint.Parse(v);
                metricsListen = v;
            }),
            new("plugin", "NAME", $"{PluginCatalog.DefaultPlugin} (default) or example (the protocol-floor example);\n" +
                                  "the socket is then NAME.socket under -kong-prefix", v =>
            {
                if (!PluginCatalog.Names.Contains(v))
                    throw new UsageException($"--plugin must be {string.Join(" or ", PluginCatalog.Names)}, not '{v}'");
                plugin = v;
            }),
        ];
        MetricsEndpoint? metrics = null;
        var host = new KongPluginHostOptions
        {
            ProgramName = ProgramName,
            Version = PluginCatalog.Version,
            Options = options,
            Commands =
            [
                new HostCommand("demo", a => Demo.DemoCommand.RunAsync(Console.Out, HostOptions.Parse(a, options).Protocol).GetAwaiter().GetResult(),
                    new HostUsage("demo", "play a story of CI calls on an embedded default")),
                new HostCommand("check", a => Check.CheckCommand.RunAsync(a, Console.Out, Console.Error, Console.In).GetAwaiter().GetResult(),
                    new HostUsage("check --config FILE --token T|-", "why was a job allowed or denied? (check --help)"),
                    new HostUsage("check --lint FILE", "validate the gitlab-ci-auth configs of a file (no token)")),
            ],
            SelectPlugins = all => [all.First(p => p.Info.Name == plugin)],
            BeforeServe = context =>
            {
                var log = context.Log;
                // the key sources shared by every instance log through the server: a key source going bad is an error line
                JwksKeyStore.Shared.Log = (level, message) => log.Write(level switch
                {
                    KeyLogLevel.Debug => LogLevel.Debug,
                    KeyLogLevel.Information => LogLevel.Info,
                    KeyLogLevel.Notice => LogLevel.Notice,
                    KeyLogLevel.Warning => LogLevel.Warn,
                    _ => LogLevel.Error,
                }, message);
                if (metricsListen is null) return null;
                try { metrics = new MetricsEndpoint(metricsListen, context.Version, context.Options.Protocol); }
                catch (Exception e) when (e is System.Net.HttpListenerException or System.Net.Sockets.SocketException or InvalidOperationException)
                {
                    log.Error($"cannot serve metrics on {metricsListen}: {e.Message}");
                    return 1;
                }
                log.Info($"metrics at {metrics.Endpoint}");
                context.Observer = metrics;
                return null;
            },
            ServerBuilt = context => metrics?.Attach(context.Server!),
            Stopped = _ => metrics?.Dispose(),
        };
        return KongPluginHost.Run(args, host, PluginCatalog.All());
    }
}
