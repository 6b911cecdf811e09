using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Host;

/// <summary>The plugins this binary can serve (one per process, as Kong 3.9+ expects).</summary>
public static class PluginCatalog
{
    public const string Version = "0.1.0";

    public static IKongPlugin Create(string name) => name switch
    {
        "example" => new ExamplePlugin(),
        // until gitlab-ci-auth is wired in, the example plugin stands in for it
        _ => new ExamplePlugin(),
    };
}
