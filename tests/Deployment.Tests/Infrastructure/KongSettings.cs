using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Deployment.Tests.Infrastructure;

/// <summary>
/// The kong.conf settings one Kong node of kong/ gets, wherever they are written: a kong.conf file, a compose
/// service's KONG_* environment (over the image's ENV when the service is built from the repository's Dockerfile),
/// or the Helm chart's <c>env</c> map. Keys are kong.conf's: an environment variable KONG_FOO_BAR is the key foo_bar.
/// </summary>
public sealed record KongSettings(string Source, IReadOnlyDictionary<string, string> Conf, IReadOnlyDictionary<string, string> Written)
{
    /// <summary>The kong.conf key of an environment variable: KONG_ + the key upper-cased.</summary>
    public static string ConfKey(string envName)
    {
        Assert.StartsWith("KONG_", envName);
        return envName["KONG_".Length..].ToLowerInvariant();
    }

    public static string EnvName(string confKey) => "KONG_" + confKey.ToUpperInvariant();

    public string? this[string key] => Conf.TryGetValue(key, out var v) ? v : null;

    public string Role => this["role"] ?? "traditional";

    public bool RunsGitLabCiAuth => (this["plugins"] ?? "").Split(',', StringSplitOptions.TrimEntries).Contains(Deployment.PluginName);

    public override string ToString() => Source;

    /// <summary>Every Kong node's settings under kong/ (nodes without any KONG_ setting, such as Postgres, are left out).</summary>
    public static IReadOnlyList<KongSettings> All()
    {
        var all = new List<KongSettings>();
        foreach (var file in Directory.EnumerateFiles(Repo.File("kong"), "*.conf", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var conf = ConfFile(file);
            all.Add(new KongSettings(Path.GetRelativePath(Repo.Root, file), conf, conf));
        }
        foreach (var file in KongFiles.YamlFiles())
        {
            var docs = Yaml.LoadAll(Repo.File(file));
            if (docs.Count != 1 || docs[0] is not YamlMappingNode root) continue;
            if (Yaml.Get(root, "services") is YamlMappingNode services && file.EndsWith("docker-compose.yml", StringComparison.Ordinal))
            {
                foreach (var (k, v) in services.Children)
                {
                    var service = (YamlMappingNode)v;
                    var written = ComposeEnvironment(service).Where(kv => kv.Key.StartsWith("KONG_", StringComparison.Ordinal))
                        .ToDictionary(kv => ConfKey(kv.Key), kv => kv.Value);
                    bool fromDockerfile = Yaml.Get(service, "build") is YamlMappingNode;
                    // a Kong node: it sets Kong's settings, or runs the image's Kong (not a one-shot command such as gen_cert)
                    if (written.Count == 0 && !(fromDockerfile && Yaml.Get(service, "command") is null)) continue;
                    var conf = new Dictionary<string, string>();
                    if (fromDockerfile)
                        foreach (var (name, value) in Deployment.ImageEnv.Where(e => e.Key.StartsWith("KONG_", StringComparison.Ordinal)))
                            conf[ConfKey(name)] = value;
                    foreach (var (key, value) in written) conf[key] = value;
                    all.Add(new KongSettings($"{file} service {((YamlScalarNode)k).Value}", conf, written));
                }
            }
            else if (Yaml.Get(root, "env") is YamlMappingNode env && Yaml.Get(root, "image") is not null)
            {
                // the Helm chart's values: env.<key> becomes KONG_<KEY>
                var written = new Dictionary<string, string>();
                foreach (var (k, v) in env.Children)
                {
                    string key = ((YamlScalarNode)k).Value!;
                    var json = Yaml.ToJson(v);
                    Assert.True(json is not null && json.GetValueKind() == JsonValueKind.String, $"{file}: env.{key} must be a string");
                    written[key] = json!.GetValue<string>();
                }
                all.Add(new KongSettings($"{file} (Helm values)", written, written));
            }
        }
        return all;
    }

    /// <summary>kong.conf's <c>key = value</c> lines (# starts a comment, keys are case-insensitive).</summary>
    public static Dictionary<string, string> ConfFile(string path)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (raw, n) in Repo.Read(path).Split('\n').Select((l, i) => (l, i + 1)))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int eq = line.IndexOf('=');
            Assert.True(eq > 0, $"{path} line {n} is not `key = value`: {raw}");
            string key = line[..eq].Trim().ToLowerInvariant(), value = line[(eq + 1)..].Trim();
            Assert.DoesNotContain("#", value);   // an unescaped # would cut the value in Kong's parser
            Assert.True(settings.TryAdd(key, value), $"{path} sets {key} twice");
        }
        return settings;
    }

    /// <summary>A compose service's environment (mapping or KEY=VALUE list); every value must be a YAML string.</summary>
    public static Dictionary<string, string> ComposeEnvironment(YamlMappingNode service)
    {
        var env = new Dictionary<string, string>();
        switch (Yaml.Get(service, "environment"))
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    // compose wants strings: an unquoted off/on/yes is a YAML boolean and turns into "false"/"true"
                    var json = Yaml.ToJson(v);
                    Assert.True(json is not null && json.GetValueKind() == JsonValueKind.String,
                        $"environment {((YamlScalarNode)k).Value} must be a quoted string, is {json?.ToJsonString() ?? "null"}");
                    env[((YamlScalarNode)k).Value!] = json!.GetValue<string>();
                }
                break;
            case YamlSequenceNode list:
                foreach (var item in list.Children.Cast<YamlScalarNode>())
                {
                    var kv = item.Value!.Split('=', 2);
                    env[kv[0]] = kv.Length > 1 ? kv[1] : "";
                }
                break;
        }
        return env;
    }
}
