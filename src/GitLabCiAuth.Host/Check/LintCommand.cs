using System.Text;
using System.Text.Json;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using Kong.PluginServer.Plugins;
using YamlDotNet.RepresentationModel;

namespace GitLabCiAuth.Host.Check;

/// <summary>
/// `gitlab-ci-auth check --lint FILE`: validates gitlab-ci-auth configs without a token, with the check the server
/// runs when Kong starts an instance (schema, entity checks, token options, policy compilation, templates). FILE
/// is a plugin config (JSON or YAML: the config itself, <c>{config: ...}</c> or a plugin entry
/// <c>{name: gitlab-ci-auth, config: ...}</c>), a declarative kong.yml (every gitlab-ci-auth entry: on services,
/// routes, consumers or at the top level) or Kubernetes manifests (every KongPlugin and KongClusterPlugin of
/// gitlab-ci-auth). Exit 0 when every config is valid, 1 when one is not (or there is none), 2 for usage errors.
/// </summary>
public static class LintCommand
{
    private const string PluginName = GitLabCiAuthPlugin.PluginName;

    /// <summary>A gitlab-ci-auth config found in the file: where it is (for people), the plugin entry and its config.</summary>
    private sealed record Entry(string Where, string EntryPath, JsonElement? Entity, JsonElement? Config, string ConfigPath)
    {
        public List<string> Problems { get; } = [];
        public List<string> Notes { get; } = [];
    }

    public static int Run(string path, TextWriter o, TextWriter err)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"check --lint: cannot read {path}: {e.Message}");
            return 2;
        }

        List<(JsonElement Root, Dictionary<string, int> Lines)> documents;
        try { documents = Parse(text); }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            o.WriteLine($"{path}: {e.Message}");
            return 1;
        }

        var plugin = new GitLabCiAuthPlugin(new JwksKeyStore());
        int entries = 0, bad = 0;
        foreach (var (root, lines) in documents)
        {
            foreach (var entry in Entries(root))
            {
                entries++;
                Lint(plugin, entry);
                string at = Location(path, lines, entry.EntryPath);
                foreach (var note in entry.Notes) o.WriteLine($"{at}: {entry.Where}: note: {note}");
                if (entry.Problems.Count == 0)
                {
                    o.WriteLine($"{at}: {entry.Where}: ok");
                    continue;
                }
                bad++;
                foreach (var problem in entry.Problems)
                {
                    // the line of the offending field when the file has it, else the entry's
                    string field = problem.Split(':', 2)[0];
                    string where = field.StartsWith("config", StringComparison.Ordinal)
                        ? Location(path, lines, Join(entry.ConfigPath, field.Length > "config.".Length ? field["config.".Length..] : ""), entry.EntryPath)
                        : Location(path, lines, Join(entry.EntryPath, field), entry.EntryPath);
                    o.WriteLine($"{where}: {entry.Where}: {problem}");
                }
            }
        }
        if (entries == 0)
        {
            o.WriteLine($"{path}: no {PluginName} config found (a plugin config, a kong.yml or KongPlugin/KongClusterPlugin manifests)");
            return 1;
        }
        o.WriteLine(bad == 0
            ? $"{path}: {entries} {PluginName} config{(entries == 1 ? "" : "s")}, all valid"
            : $"{path}: {entries} {PluginName} config{(entries == 1 ? "" : "s")}, {bad} with problems");
        return bad == 0 ? 0 : 1;
    }

    /// <summary>The server's instance-start check on the config, plus the entity fields Kong checks (consumer, protocols).</summary>
    private static void Lint(GitLabCiAuthPlugin plugin, Entry entry)
    {
        if (entry.Entity is { } entity && entity.ValueKind == JsonValueKind.Object)
        {
            foreach (var f in plugin.Info.EntityFields)
            {
                if (!entity.TryGetProperty(f.Name, out var v) || v.ValueKind == JsonValueKind.Null) continue;
                if (f.Type.Type == "foreign" && f.Type.EqJson == "null")
                {
                    entry.Problems.Add($"{f.Name}: value must be null ({PluginName} cannot be scoped to a {f.Type.Reference?.TrimEnd('s') ?? f.Name})");
                    continue;
                }
                var one = Encoding.UTF8.GetBytes($"{{\"{f.Name}\":{v.GetRawText()}}}");
                foreach (var p in ConfigNormalizer.Check(one, [f], [], out _))
                    entry.Problems.Add($"{p.Field}: {p.Reason}");
            }
        }
        if (entry.Config is not { } config)
        {
            if (entry.Notes.Count == 0) entry.Problems.Add("config: required field missing");
            return;
        }
        foreach (var p in plugin.Lint(Encoding.UTF8.GetBytes(config.GetRawText())))
            entry.Problems.Add($"{(p.Field.Length == 0 ? "config" : "config." + p.Field)}: {p.Reason}");
    }

    // ---- finding the configs ----

    private static IEnumerable<Entry> Entries(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) yield break;

        // Kubernetes: KongPlugin / KongClusterPlugin (configuration.konghq.com)
        if (Str(root, "kind") is "KongPlugin" or "KongClusterPlugin" && (Str(root, "apiVersion") ?? "").StartsWith("configuration.konghq.com/", StringComparison.Ordinal))
        {
            if (Str(root, "plugin") != PluginName) yield break;
            string kind = Str(root, "kind")!;
            string name = root.TryGetProperty("metadata", out var md) ? Str(md, "name") ?? "?" : "?";
            string? ns = root.TryGetProperty("metadata", out md) ? Str(md, "namespace") : null;
            var entry = new Entry($"{kind} {name}{(ns is null ? "" : $" (namespace {ns})")}", "", null,
                root.TryGetProperty("config", out var c) ? c : null, "config");
            if (root.TryGetProperty("protocols", out var protocols))
            {
                using var doc = JsonDocument.Parse($"{{\"protocols\":{protocols.GetRawText()}}}");
                entry = entry with { Entity = doc.RootElement.Clone() };
            }
            if (Str(root, "consumerRef") is { Length: > 0 })
                entry.Problems.Add($"consumerRef: {PluginName} cannot be scoped to a Consumer");
            if (root.TryGetProperty("configFrom", out _))
                entry.Notes.Add("config comes from a Secret (configFrom) and is not checked here");
            yield return entry;
            yield break;
        }
        if (root.TryGetProperty("apiVersion", out _) && root.TryGetProperty("kind", out _)) yield break;   // another Kubernetes object

        // declarative kong.yml
        if (root.TryGetProperty("_format_version", out _) || new[] { "services", "routes", "plugins", "consumers" }.Any(k => IsArray(root, k)))
        {
            foreach (var e in KongYml(root)) yield return e;
            yield break;
        }

        // a single plugin entry, {config: ...}, or the config itself
        if (Str(root, "name") is { } pluginName && root.TryGetProperty("config", out var cfg))
        {
            if (pluginName == PluginName) yield return new Entry($"plugin {PluginName}", "", root, cfg, "config");
            yield break;
        }
        if (root.TryGetProperty("config", out var only) && only.ValueKind == JsonValueKind.Object)
        {
            yield return new Entry($"{PluginName} config", "", null, only, "config");
            yield break;
        }
        yield return new Entry($"{PluginName} config", "", null, root, "");
    }

    private static IEnumerable<Entry> KongYml(JsonElement root)
    {
        IEnumerable<Entry> Plugins(JsonElement parent, string parentPath, string where)
        {
            int i = 0;
            foreach (var p in Array(parent, "plugins"))
            {
                string path = $"{Join(parentPath, "plugins")}[{i++}]";
                if (Str(p, "name") != PluginName) continue;
                var e = new Entry(where, path, p, p.TryGetProperty("config", out var c) ? c : null, Join(path, "config"));
                yield return e;
            }
        }

        int s = 0;
        foreach (var svc in Array(root, "services"))
        {
            string svcPath = $"services[{s++}]", svcName = Str(svc, "name") ?? svcPath;
            foreach (var e in Plugins(svc, svcPath, $"service {svcName}")) yield return e;
            int r = 0;
            foreach (var route in Array(svc, "routes"))
            {
                string routePath = $"{svcPath}.routes[{r++}]";
                foreach (var e in Plugins(route, routePath, $"route {Str(route, "name") ?? routePath} (service {svcName})")) yield return e;
            }
        }
        int rt = 0;
        foreach (var route in Array(root, "routes"))
        {
            string routePath = $"routes[{rt++}]";
            foreach (var e in Plugins(route, routePath, $"route {Str(route, "name") ?? routePath}")) yield return e;
        }
        int cs = 0;
        foreach (var consumer in Array(root, "consumers"))
        {
            string cPath = $"consumers[{cs++}]";
            foreach (var e in Plugins(consumer, cPath, $"consumer {Str(consumer, "username") ?? Str(consumer, "custom_id") ?? cPath}"))
            {
                e.Problems.Add($"consumer: {PluginName} cannot be scoped to a Consumer");
                yield return e;
            }
        }
        foreach (var e in Plugins(root, "", "top-level plugin"))
        {
            var p = e.Entity!.Value;
            string? Ref(string key) => p.TryGetProperty(key, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : Str(v, "name") ?? Str(v, "id") : null;
            string where = Ref("route") is { } route ? $"plugin on route {route}"
                : Ref("service") is { } service ? $"plugin on service {service}"
                : "global plugin";
            yield return e with { Where = where };
        }
    }

    // ---- reading the file ----

    /// <summary>JSON (one document, no line numbers) or YAML (every document, with the line of each node).</summary>
    private static List<(JsonElement, Dictionary<string, int>)> Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = false });
            return [(doc.RootElement.Clone(), new Dictionary<string, int>())];
        }
        catch (JsonException) { }   // not JSON: YAML

        var result = new List<(JsonElement, Dictionary<string, int>)>();
        foreach (var d in ConfigFile.YamlDocuments(text))
        {
            var lines = new Dictionary<string, int>(StringComparer.Ordinal);
            MapLines(d.RootNode, "", (int)d.RootNode.Start.Line, lines);
            using var doc = JsonDocument.Parse(ConfigFile.NodeToJson(d.RootNode));
            result.Add((doc.RootElement.Clone(), lines));
        }
        return result;
    }

    /// <summary>path (services[0].routes[1].plugins[0].config.rules[0]) → the line its key or item starts on.</summary>
    private static void MapLines(YamlNode node, string path, int line, Dictionary<string, int> lines)
    {
        lines[path] = line;
        switch (node)
        {
            case YamlMappingNode m:
                foreach (var (k, v) in m.Children)
                    if (k is YamlScalarNode key) MapLines(v, Join(path, key.Value ?? ""), (int)k.Start.Line, lines);
                break;
            case YamlSequenceNode s:
                for (int i = 0; i < s.Children.Count; i++) MapLines(s.Children[i], $"{path}[{i}]", (int)s.Children[i].Start.Line, lines);
                break;
        }
    }

    /// <summary>FILE:LINE for the longest known prefix of <paramref name="path"/> (FILE alone for JSON).</summary>
    private static string Location(string file, Dictionary<string, int> lines, string path, string? fallback = null)
    {
        for (string p = path; ; p = Parent(p))
        {
            if (lines.TryGetValue(p, out int line) && (p.Length > 0 || fallback is null)) return $"{file}:{line}";
            if (p.Length == 0) break;
        }
        return fallback is not null && lines.TryGetValue(fallback, out int l) ? $"{file}:{l}" : file;
    }

    private static string Parent(string path)
    {
        int cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
        return cut <= 0 ? "" : path[..cut];
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : b.Length == 0 ? a : b.StartsWith('[') ? a + b : a + "." + b;

    private static IEnumerable<JsonElement> Array(JsonElement e, string name) =>
        IsArray(e, name) ? e.GetProperty(name).EnumerateArray() : [];

    private static bool IsArray(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array;

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
