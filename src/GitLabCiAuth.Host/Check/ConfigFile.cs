using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GitLabCiAuth.Host.Check;

/// <summary>
/// Reads a gitlab-ci-auth config for the `check` command: a plugin config as JSON or YAML (the object
/// itself, or `{config: ...}`), or a declarative kong.yml with the route named by `--route`.
/// </summary>
public static class ConfigFile
{
    public static byte[] Load(string path, string? route)
    {
        string text = File.ReadAllText(path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text); }
        catch (JsonException) { doc = JsonDocument.Parse(YamlToJson(text)); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{path}: expected a mapping at the top");
            if (route is not null || root.TryGetProperty("_format_version", out _) || root.TryGetProperty("services", out _))
                return FromKongYml(root, route, path);
            if (root.TryGetProperty("config", out var cfg) && cfg.ValueKind == JsonValueKind.Object) return Raw(cfg);
            return Raw(root);
        }
    }

    /// <summary>Finds the gitlab-ci-auth plugin of a route: top-level plugins with `route: NAME`, or nested under the route or its service.</summary>
    private static byte[] FromKongYml(JsonElement root, string? route, string path)
    {
        if (route is null) throw new FormatException($"{path} is a kong.yml: name the route with --route NAME");
        var candidates = new List<JsonElement>();
        string? serviceOfRoute = null;
        foreach (var svc in Array(root, "services"))
        {
            foreach (var r in Array(svc, "routes"))
            {
                if (Str(r, "name") != route) continue;
                serviceOfRoute = Str(svc, "name");
                candidates.AddRange(Plugins(r));
                if (candidates.Count == 0) candidates.AddRange(Plugins(svc));
            }
        }
        foreach (var r in Array(root, "routes"))
            if (Str(r, "name") == route) candidates.AddRange(Plugins(r));
        foreach (var p in Array(root, "plugins"))
        {
            if (Str(p, "name") != "gitlab-ci-auth") continue;
            string? pr = p.TryGetProperty("route", out var re) ? re.ValueKind == JsonValueKind.String ? re.GetString() : Str(re, "name") : null;
            string? ps = p.TryGetProperty("service", out var se) ? se.ValueKind == JsonValueKind.String ? se.GetString() : Str(se, "name") : null;
            if (pr == route || (pr is null && ps is not null && ps == serviceOfRoute)) candidates.Add(p);
        }
        var found = candidates.FirstOrDefault(p => Str(p, "name") == "gitlab-ci-auth");
        if (found.ValueKind != JsonValueKind.Object)
            throw new FormatException($"{path}: no gitlab-ci-auth plugin applies to route '{route}'");
        return found.TryGetProperty("config", out var c) ? Raw(c) : "{}"u8.ToArray();
    }

    private static IEnumerable<JsonElement> Plugins(JsonElement e) =>
        Array(e, "plugins").Where(p => Str(p, "name") == "gitlab-ci-auth");

    private static IEnumerable<JsonElement> Array(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray() : [];

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static byte[] Raw(JsonElement e) => Encoding.UTF8.GetBytes(e.GetRawText());

    /// <summary>YAML → JSON: plain scalars get YAML 1.2 core types (bool, null, numbers); quoted ones stay strings.</summary>
    public static string YamlToJson(string yaml)
    {
        var documents = YamlDocuments(yaml);
        if (documents.Count == 0) throw new FormatException("empty YAML document");
        return NodeToJson(documents[0].RootNode);
    }

    /// <summary>Every document of a YAML stream (a Kubernetes manifest has several, separated by ---).</summary>
    public static IReadOnlyList<YamlDocument> YamlDocuments(string yaml)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new FormatException($"invalid YAML at line {e.Start.Line}: {e.Message}"); }
        // YamlDotNet's scanner raises this on some malformed input (an unclosed flow sequence before a key)
        catch (InvalidOperationException) { throw new FormatException("invalid YAML: an unclosed [ or { or a stray character"); }
        return [.. stream.Documents];
    }

    /// <summary>One YAML node as JSON text, with <see cref="YamlToJson"/>'s typing.</summary>
    public static string NodeToJson(YamlNode node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) Write(w, node, 0);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Write(Utf8JsonWriter w, YamlNode node, int depth)
    {
        if (depth > 64) throw new FormatException("YAML nested too deeply");
        switch (node)
        {
            case YamlMappingNode m:
                w.WriteStartObject();
                foreach (var (k, v) in m.Children)
                {
                    w.WritePropertyName(k is YamlScalarNode ks ? ks.Value ?? "" : throw new FormatException("mapping keys must be scalars"));
                    Write(w, v, depth + 1);
                }
                w.WriteEndObject();
                break;
            case YamlSequenceNode s:
                w.WriteStartArray();
                foreach (var item in s.Children) Write(w, item, depth + 1);
                w.WriteEndArray();
                break;
            case YamlScalarNode sc:
                string v2 = sc.Value ?? "";
                if (sc.Style is ScalarStyle.Plain)
                {
                    if (v2 is "" or "~" or "null" or "Null" or "NULL") { w.WriteNullValue(); break; }
                    if (v2 is "true" or "True" or "TRUE") { w.WriteBooleanValue(true); break; }
                    if (v2 is "false" or "False" or "FALSE") { w.WriteBooleanValue(false); break; }
                    if (long.TryParse(v2, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) { w.WriteNumberValue(l); break; }
                    if (double.TryParse(v2, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && !double.IsInfinity(d)) { w.WriteNumberValue(d); break; }
                }
                w.WriteStringValue(v2);
                break;
            default:
                w.WriteNullValue();
                break;
        }
    }
}
