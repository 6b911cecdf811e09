using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace Deployment.Tests.Infrastructure;

/// <summary>The YAML files under kong/ and the plugin configs they hold, wherever they are declared.</summary>
public static class KongFiles
{
    /// <summary>Repository-relative paths of every .yml/.yaml file under kong/, sorted.</summary>
    public static IReadOnlyList<string> YamlFiles() =>
        Directory.EnumerateFiles(Repo.File("kong"), "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".yaml", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(Repo.Root, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// Every plugin with a config: entries of any <c>plugins</c> list of a declarative config (services, routes,
    /// consumers, top level) and KongPlugin/KongClusterPlugin objects of Kubernetes manifests.
    /// </summary>
    public static IEnumerable<(string File, string Plugin, JsonObject Config)> PluginConfigs()
    {
        foreach (var file in YamlFiles())
        {
            foreach (var doc in Yaml.LoadAll(Repo.File(file)))
            {
                if (doc is not YamlMappingNode root) continue;
                if (Yaml.Str(root, "kind") is "KongPlugin" or "KongClusterPlugin")
                {
                    if (Yaml.Get(root, "config") is { } c && Yaml.ToJson(c) is JsonObject config)
                        yield return (file, Yaml.Str(root, "plugin") ?? "", config);
                    continue;
                }
                foreach (var found in Declarative(root)) yield return (file, found.Plugin, found.Config);
            }
        }
    }

    private static IEnumerable<(string Plugin, JsonObject Config)> Declarative(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    if (k is YamlScalarNode { Value: "plugins" } && v is YamlSequenceNode plugins)
                    {
                        foreach (var p in plugins.Children.OfType<YamlMappingNode>())
                            if (Yaml.Str(p, "name") is { } name && Yaml.Get(p, "config") is { } c && Yaml.ToJson(c) is JsonObject config)
                                yield return (name, config);
                    }
                    foreach (var inner in Declarative(v)) yield return inner;
                }
                break;
            case YamlSequenceNode seq:
                foreach (var item in seq.Children)
                    foreach (var inner in Declarative(item)) yield return inner;
                break;
        }
    }
}
