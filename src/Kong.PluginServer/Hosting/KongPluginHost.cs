using System.Reflection;
using System.Runtime.InteropServices;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Hosting;

/// <summary>
/// Everything Kong needs from a plugin server executable, for a <c>Main</c> of one line
/// (<c>return KongPluginHost.Run(args, new MyPlugin());</c>, docs/hosting.md): <c>-dump</c> for the query command, the
/// socket at <c>&lt;kong-prefix&gt;/&lt;name&gt;.socket</c> (or <c>--socket</c>), the protocol and the server's limits
/// from the command line, SIGTERM/SIGINT draining. Exit codes: 0 (dumped, or served and drained), 1 (cannot listen,
/// or a product hook refused), 2 (bad command line, message on stderr).
/// </summary>
public static class KongPluginHost
{
    /// <summary>Serves <paramref name="plugins"/> (one or several) as Kong's command line asks; returns the exit code.</summary>
    public static int Run(string[] args, params IKongPlugin[] plugins) => Run(args, new KongPluginHostOptions(), plugins);

    /// <summary>Serves <paramref name="plugins"/> with a product's additions (<paramref name="options"/>); returns the exit code.</summary>
    public static int Run(string[] args, KongPluginHostOptions options, params IKongPlugin[] plugins)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(options);
        if (plugins is null || plugins.Length == 0) throw new ArgumentException("a host serves at least one plugin", nameof(plugins));
        if (plugins.Select(p => p.Info.Name).Distinct(StringComparer.Ordinal).Count() != plugins.Length)
            throw new ArgumentException("two plugins have the same name", nameof(plugins));
        var stdout = options.Out ?? Console.Out;
        var stderr = options.Error ?? Console.Error;
        string program = options.ProgramName ?? ProgramName(Environment.ProcessPath);
        try
        {
            if (args.Length > 0)
            {
                foreach (var command in options.Commands)
                    if (command.Name == args[0]) return command.Run(args[1..]);
            }
            var parsed = HostOptions.Parse(args, options.Options);
            IReadOnlyList<IKongPlugin> served = options.SelectPlugins?.Invoke(plugins) ?? plugins;
            if (served.Count == 0) throw new UsageException("no plugin to serve");
            string socketName = SocketName(served, Environment.ProcessPath);
            if (parsed.Help)
            {
                stdout.WriteLine(HostOptions.Usage(program, socketName, options.Options, options.Commands.SelectMany(c => c.Usage)));
                return 0;
            }
            string version = options.Version ?? DefaultVersion(served);
            if (parsed.ShowVersion)
            {
                stdout.WriteLine(version);
                return 0;
            }
            if (parsed.DumpPlugin is not null && !parsed.Dump) throw new UsageException("--dump-plugin goes with -dump");
            if (parsed.Dump)
            {
                stdout.WriteLine(Dump(served, parsed.Protocol, parsed.DumpPlugin));
                return 0;
            }
            var log = new ServerLog(stderr, parsed.LogLevel);
            var context = new KongPluginHostContext(parsed, log, served, parsed.SocketPath(socketName), version);
            return Serve(context, options);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"{program}: {e.Message}");
            stderr.WriteLine($"run '{program} --help' for the options");
            return 2;
        }
    }

    /// <summary>
    /// The socket's file name under <c>-kong-prefix</c>: <c>&lt;plugin&gt;.socket</c> for a process serving one plugin (what
    /// Kong 3.9+ assumes for a pluginserver entry named after it), <c>&lt;executable&gt;.socket</c> for one serving several.
    /// </summary>
    public static string SocketName(IReadOnlyList<IKongPlugin> served, string? processPath)
    {
        if (served.Count == 1) return served[0].Info.Name + ".socket";
        return ProgramName(processPath) + ".socket";
    }

    /// <summary>The <c>-dump</c> JSON of <paramref name="served"/>, or of the one named <paramref name="only"/>.</summary>
    public static string Dump(IReadOnlyList<IKongPlugin> served, string protocol, string? only = null)
    {
        if (only is null) return PluginDump.Render(served.Select(p => p.Info), protocol);
        var plugin = served.FirstOrDefault(p => p.Info.Name == only)
            ?? throw new UsageException($"--dump-plugin: no plugin named '{only}' (this program serves {string.Join(", ", served.Select(p => p.Info.Name))})");
        return PluginDump.Render(plugin.Info, protocol);
    }

    private static string ProgramName(string? processPath)
    {
        string? name = processPath is null ? null : Path.GetFileNameWithoutExtension(processPath);
        return string.IsNullOrEmpty(name) ? "kong-plugin-server" : name;
    }

    private static string DefaultVersion(IReadOnlyList<IKongPlugin> served)
    {
        if (served.Count == 1) return served[0].Info.Version;
        var assembly = Assembly.GetEntryAssembly();
        string? v = assembly?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (v is not null)
        {
            int plus = v.IndexOf('+'); // no source revision
            return plus > 0 ? v[..plus] : v;
        }
        return assembly?.GetName().Version?.ToString(3) ?? served[0].Info.Version;
    }

    private static int Serve(KongPluginHostContext context, KongPluginHostOptions options)
    {
        var log = context.Log;
        int? refused = options.BeforeServe?.Invoke(context);
        if (refused is int code) return code;
        try
        {
            KongPluginServer server;
            try
            {
                server = new KongPluginServer(context.Plugins, context.Options.ToServerOptions(context.SocketPath, log, context.Observer));
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
            {
                log.Error($"cannot listen on {context.SocketPath}: {e.Message}");
                return 1;
            }
            context.Server = server;
            options.ServerBuilt?.Invoke(context);

            using var stop = new ManualResetEventSlim();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });
            using var token = options.StopToken.Register(stop.Set);
            server.Start();
            stop.Wait();
            log.Info(options.StopToken.IsCancellationRequested ? "stop requested: stopping" : "signal received: stopping");
            server.StopAsync().GetAwaiter().GetResult();
            return 0;
        }
        finally
        {
            options.Stopped?.Invoke(context);
        }
    }
}
