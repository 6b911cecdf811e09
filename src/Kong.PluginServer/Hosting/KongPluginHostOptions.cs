using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Hosting;

/// <summary>What a product adds to <see cref="KongPluginHost"/>: its name, version, subcommands, options and hooks.</summary>
public sealed class KongPluginHostOptions
{
    /// <summary>The program's name in messages and the usage text. Default: the executable's file name.</summary>
    public string? ProgramName { get; init; }

    /// <summary>What <c>--version</c> prints. Default: the plugin's version (one plugin), else the entry assembly's.</summary>
    public string? Version { get; init; }

    /// <summary>Subcommands, recognized as the first argument and run instead of the server (<c>check</c>, <c>demo</c>).</summary>
    public IList<HostCommand> Commands { get; init; } = new List<HostCommand>();

    /// <summary>The product's own options, parsed with the host's (and listed in its usage text).</summary>
    public IList<HostOption> Options { get; init; } = new List<HostOption>();

    /// <summary>
    /// Picks the plugins to serve (and dump) from those given to <see cref="KongPluginHost.Run(string[], KongPluginHostOptions, IKongPlugin[])"/>,
    /// after the command line is parsed (gitlab-ci-auth's <c>--plugin NAME</c>). Default: all of them. May throw
    /// <see cref="UsageException"/>.
    /// </summary>
    public Func<IReadOnlyList<IKongPlugin>, IReadOnlyList<IKongPlugin>>? SelectPlugins { get; init; }

    /// <summary>
    /// Runs before the socket is bound, with the log and the settings: may set <see cref="KongPluginHostContext.Observer"/>
    /// (metrics) or return an exit code to stop there (1 when a metrics port is taken). Null: go on.
    /// </summary>
    public Func<KongPluginHostContext, int?>? BeforeServe { get; init; }

    /// <summary>The server is built and about to start (<see cref="KongPluginHostContext.Server"/> is set): attach metrics.</summary>
    public Action<KongPluginHostContext>? ServerBuilt { get; init; }

    /// <summary>The host is done serving (the server drained and stopped, or never listened): release what <see cref="BeforeServe"/> took.</summary>
    public Action<KongPluginHostContext>? Stopped { get; init; }

    /// <summary>Stops the server like SIGTERM when cancelled (embedding, tests).</summary>
    public CancellationToken StopToken { get; init; }

    /// <summary>Where the dump, the usage text and the version go. Default: <see cref="Console.Out"/>.</summary>
    public TextWriter? Out { get; init; }

    /// <summary>Where usage errors and the server's log go. Default: <see cref="Console.Error"/>.</summary>
    public TextWriter? Error { get; init; }
}

/// <summary>What the hooks of <see cref="KongPluginHostOptions"/> see.</summary>
public sealed class KongPluginHostContext
{
    internal KongPluginHostContext(HostOptions options, ServerLog log, IReadOnlyList<IKongPlugin> plugins, string socketPath, string version)
    {
        Options = options;
        Log = log;
        Plugins = plugins;
        SocketPath = socketPath;
        Version = version;
    }

    /// <summary>The parsed command line.</summary>
    public HostOptions Options { get; }

    /// <summary>The server's log (stderr, at <c>--log-level</c>).</summary>
    public ServerLog Log { get; }

    /// <summary>The plugins served.</summary>
    public IReadOnlyList<IKongPlugin> Plugins { get; }

    public string SocketPath { get; }

    public string Version { get; }

    /// <summary>Set by <see cref="KongPluginHostOptions.BeforeServe"/>: told of every event (metrics).</summary>
    public IServerObserver? Observer { get; set; }

    /// <summary>The server, once built.</summary>
    public KongPluginServer? Server { get; internal set; }
}
