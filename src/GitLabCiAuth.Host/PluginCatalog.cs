using Example;
using GitLabCiAuth.Plugin;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Host;

/// <summary>The plugins this binary can serve; `--plugin NAME` picks one (gitlab-ci-auth by default).</summary>
public static class PluginCatalog
{
    public const string Version = GitLabCiAuthPlugin.PluginVersion;
    public const string DefaultPlugin = GitLabCiAuthPlugin.PluginName;

    public static IReadOnlyList<string> Names { get; } = [GitLabCiAuthPlugin.PluginName, "example"];

    public static IKongPlugin[] All() => [new GitLabCiAuthPlugin(), new ExamplePlugin()];
}
