using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace Deployment.Tests.Infrastructure;

/// <summary>A plugin entry of a declarative config, with where it applies.</summary>
public sealed record KongPluginUse(string Name, YamlMappingNode Entry, JsonObject? Config, string? Service, string? Route, string Where)
{
    public bool IsGlobal => Service is null && Route is null;
    public override string ToString() => $"{Name} on {Where}";
}

public sealed record KongRoute(string Name, string? Service, IReadOnlyList<string> Paths, IReadOnlyList<string> Methods);

public sealed record KongService(string Name, string? Url);

/// <summary>
/// The entities of a Kong declarative config (kong.yml) the tests need: services, routes (nested or top level),
/// and every plugin entry wherever it is declared, plus Kong's precedence for what runs on a route.
/// </summary>
public sealed class KongDeclarative
{
    /// <summary>Fields of Kong's plugin entity a declarative plugin entry may carry.</summary>
    public static readonly string[] PluginEntityFields =
        ["name", "config", "enabled", "protocols", "tags", "route", "service", "consumer", "consumer_group", "instance_name", "id", "ordering"];

    public YamlMappingNode Root { get; }
    public List<KongService> Services { get; } = [];
    public List<KongRoute> Routes { get; } = [];
    public List<KongPluginUse> Plugins { get; } = [];

    private KongDeclarative(YamlMappingNode root)
    {
        Root = root;
        foreach (var s in Yaml.Seq(root, "services").Select(n => Yaml.Map(n, "a service")))
        {
            string name = Yaml.Str(s, "name") ?? throw new FormatException($"a service without a name at {s.Start}");
            Services.Add(new KongService(name, Yaml.Str(s, "url")));
            AddPlugins(s, service: name, route: null, $"service {name}");
            foreach (var r in Yaml.Seq(s, "routes").Select(n => Yaml.Map(n, "a route")))
                AddRoute(r, name);
        }
        foreach (var r in Yaml.Seq(root, "routes").Select(n => Yaml.Map(n, "a route")))
            AddRoute(r, Yaml.Str(r, "service"));
        foreach (var p in Yaml.Seq(root, "plugins").Select(n => Yaml.Map(n, "a plugin")))
            Plugins.Add(Use(p, Yaml.Str(p, "service"), Yaml.Str(p, "route"), "top level"));
    }

    public static KongDeclarative Load(string path) => new(Yaml.Map(Yaml.Load(path), path));

    private void AddRoute(YamlMappingNode r, string? service)
    {
        string name = Yaml.Str(r, "name") ?? throw new FormatException($"a route without a name at {r.Start}");
        Routes.Add(new KongRoute(name, service,
            Yaml.Seq(r, "paths").Select(n => ((YamlScalarNode)n).Value!).ToList(),
            Yaml.Seq(r, "methods").Select(n => ((YamlScalarNode)n).Value!).ToList()));
        AddPlugins(r, service: null, route: name, $"route {name}");
    }

    private void AddPlugins(YamlMappingNode parent, string? service, string? route, string where)
    {
        foreach (var p in Yaml.Seq(parent, "plugins").Select(n => Yaml.Map(n, "a plugin")))
            Plugins.Add(Use(p, service, route, where));
    }

    private static KongPluginUse Use(YamlMappingNode p, string? service, string? route, string where)
    {
        string name = Yaml.Str(p, "name") ?? throw new FormatException($"a plugin without a name at {p.Start}");
        var config = Yaml.Get(p, "config") is { } c ? Yaml.ToJson(c) as JsonObject : null;
        return new KongPluginUse(name, p, config, service, route, where);
    }

    public KongRoute Route(string name) => Routes.SingleOrDefault(r => r.Name == name) ?? throw new KeyNotFoundException($"kong.yml has no route '{name}'");

    /// <summary>The plugins Kong runs on a request matched by <paramref name="route"/>: per plugin name, the route's entry, else the service's, else the global one.</summary>
    public Dictionary<string, KongPluginUse> EffectivePlugins(KongRoute route)
    {
        var result = new Dictionary<string, KongPluginUse>(StringComparer.Ordinal);
        foreach (var p in Plugins.Where(p => p.IsGlobal)) result[p.Name] = p;
        foreach (var p in Plugins.Where(p => p.Route is null && p.Service is not null && p.Service == route.Service)) result[p.Name] = p;
        foreach (var p in Plugins.Where(p => p.Route == route.Name)) result[p.Name] = p;
        return result;
    }
}
