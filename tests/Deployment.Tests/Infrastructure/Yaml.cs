using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Deployment.Tests.Infrastructure;

/// <summary>
/// Reads YAML (YamlDotNet's representation model) and converts it to JSON the way Kong's loader (lyaml,
/// YAML 1.1 implicit types) sees it: an unquoted <c>true</c>, <c>yes</c>, <c>on</c>... is a boolean, an unquoted
/// <c>42</c> a number, <c>~</c>/<c>null</c>/empty a null; quoted scalars are strings. So a claim pattern written
/// <c>[true]</c> instead of <c>["true"]</c> reaches the schema as a boolean, exactly like in Kong.
/// </summary>
public static partial class Yaml
{
    public static YamlNode Load(string path) => Parse(Repo.Read(path), path);

    public static YamlNode Parse(string text, string what = "YAML")
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(text))
            stream.Load(reader);
        Assert.True(stream.Documents.Count == 1, $"{what}: expected one YAML document, found {stream.Documents.Count}");
        return stream.Documents[0].RootNode;
    }

    /// <summary>Every document of a YAML stream (Kubernetes manifests hold several, separated by ---).</summary>
    public static IReadOnlyList<YamlNode> LoadAll(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(Repo.Read(path)))
            stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).ToList();
    }

    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => ToObject(map),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => throw new FormatException($"unsupported YAML node {node.NodeType} at {node.Start}"),
    };

    private static JsonObject ToObject(YamlMappingNode map)
    {
        var o = new JsonObject();
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode key || key.Value is null) throw new FormatException($"non-scalar key at {k.Start}");
            if (o.ContainsKey(key.Value)) throw new FormatException($"duplicate key '{key.Value}' at {k.Start}");
            o[key.Value] = ToJson(v);
        }
        return o;
    }

    private static JsonNode? Scalar(YamlScalarNode s)
    {
        string v = s.Value ?? "";
        if (s.Style is not ScalarStyle.Plain) return JsonValue.Create(v);
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (BoolTrue().IsMatch(v)) return JsonValue.Create(true);
        if (BoolFalse().IsMatch(v)) return JsonValue.Create(false);
        if (Int().IsMatch(v) && long.TryParse(v.Replace("_", ""), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            return JsonValue.Create(l);
        if (Float().IsMatch(v) && double.TryParse(v.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
            return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    [GeneratedRegex("^(y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$")]
    private static partial Regex BoolTrue();

    [GeneratedRegex("^(n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$")]
    private static partial Regex BoolFalse();

    [GeneratedRegex("^[-+]?(0|[1-9][0-9_]*)$")]
    private static partial Regex Int();

    [GeneratedRegex(@"^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();

    // ---- navigation helpers for the tests ----

    public static YamlMappingNode Map(YamlNode node, string what) =>
        node as YamlMappingNode ?? throw new FormatException($"{what} must be a mapping (at {node.Start})");

    public static YamlNode? Get(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    public static string? Str(YamlMappingNode map, string key) => (Get(map, key) as YamlScalarNode)?.Value;

    public static IEnumerable<YamlNode> Seq(YamlMappingNode map, string key) =>
        Get(map, key) is YamlSequenceNode s ? s.Children : [];
}
