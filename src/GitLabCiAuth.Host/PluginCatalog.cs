using GitLabCiAuth.Plugin;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Host;

/// <summary>The plugins this binary can serve (one per process, as Kong 3.9+ expects).</summary>
public static class PluginCatalog
{
    public const string Version = GitLabCiAuthPlugin.PluginVersion;

    public static IKongPlugin Create(string name) => name switch
    {
        "example" => new ExamplePlugin(),
        GitLabCiAuthPlugin.PluginName => new GitLabCiAuthPlugin(),
        _ => throw new UsageException($"unknown plugin '{name}'"),
    };
}
