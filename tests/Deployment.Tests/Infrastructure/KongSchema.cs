using System.Text.Json.Nodes;

namespace Deployment.Tests.Infrastructure;

/// <summary>
/// Validates a plugin config against a Kong plugin schema as the binary dumps it for Kong (the subset of Kong's
/// schema language the dump uses: string, boolean, integer, number, array/set with <c>elements</c>, map with
/// <c>keys</c>/<c>values</c>, record with <c>fields</c>; <c>required</c> (unless a <c>default</c> fills it),
/// <c>one_of</c>, <c>between</c>, <c>len_min</c>, <c>len_max</c>). Unknown field names are errors, like in Kong.
/// </summary>
public static class KongSchema
{
    /// <summary>The <c>config</c> record of the named plugin in a dump (<c>{"Protocol", "Plugins": [...]}</c> or a bare array).</summary>
    public static JsonObject ConfigRecord(JsonNode dump, string pluginName)
    {
        var plugins = dump is JsonObject o ? o["Plugins"]!.AsArray() : dump.AsArray();
        var plugin = plugins.Single(p => (string?)p!["Name"] == pluginName)!;
        var schema = plugin["Schema"]!.AsObject();
        Assert.Equal(pluginName, (string?)schema["name"]);
        var config = schema["fields"]!.AsArray().Select(f => f!.AsObject()).Single(f => f.ContainsKey("config"))["config"]!.AsObject();
        Assert.Equal("record", (string?)config["type"]);
        return config;
    }

    /// <summary>Names of a record's fields, in schema order.</summary>
    public static IEnumerable<string> FieldNames(JsonObject record) =>
        record["fields"]!.AsArray().Select(f => f!.AsObject().Single().Key);

    public static JsonObject? Field(JsonObject record, string name) =>
        record["fields"]!.AsArray().Select(f => f!.AsObject().Single()).Where(kv => kv.Key == name).Select(kv => kv.Value!.AsObject()).FirstOrDefault();

    /// <summary>Every violation, as "path: reason"; empty when the value is valid.</summary>
    public static List<string> Validate(JsonObject typedef, JsonNode? value, string path = "config")
    {
        var errors = new List<string>();
        Check(typedef, value, path, errors);
        return errors;
    }

    private static void Check(JsonObject t, JsonNode? value, string path, List<string> errors)
    {
        string type = (string?)t["type"] ?? throw new FormatException($"{path}: schema entry without a type");
        if (value is null)
        {
            // only reached for array elements and map values: a null there is never valid
            errors.Add($"{path}: null is not a {type}");
            return;
        }
        switch (type)
        {
            case "string":
                if (!IsString(value, out var s)) { errors.Add($"{path}: expected a string, got {Describe(value)}"); return; }
                if (t["len_min"] is { } min && s.Length < (int)min) errors.Add($"{path}: length must be at least {(int)min}");
                if (t["len_max"] is { } max && s.Length > (int)max) errors.Add($"{path}: length must be at most {(int)max}");
                OneOf(t, value, path, errors);
                break;
            case "boolean":
                if (value.GetValueKind() is not (System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False))
                    errors.Add($"{path}: expected a boolean, got {Describe(value)}");
                break;
            case "integer" or "number":
            {
                if (value.GetValueKind() != System.Text.Json.JsonValueKind.Number) { errors.Add($"{path}: expected an {type}, got {Describe(value)}"); return; }
                double d = double.Parse(value.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
                if (type == "integer" && d != Math.Floor(d)) { errors.Add($"{path}: expected an integer, got {d}"); return; }
                if (t["between"] is JsonArray b && (d < Number(b[0]!) || d > Number(b[1]!)))
                    errors.Add($"{path}: value should be between {b[0]} and {b[1]}");
                OneOf(t, value, path, errors);
                break;
            }
            case "array" or "set":
            {
                if (value is not JsonArray arr) { errors.Add($"{path}: expected an array, got {Describe(value)}"); return; }
                if (t["len_min"] is { } amin && arr.Count < (int)amin) errors.Add($"{path}: length must be at least {(int)amin}");
                if (t["len_max"] is { } amax && arr.Count > (int)amax) errors.Add($"{path}: length must be at most {(int)amax}");
                var elements = t["elements"]?.AsObject() ?? throw new FormatException($"{path}: array without elements");
                for (int i = 0; i < arr.Count; i++) Check(elements, arr[i], $"{path}[{i}]", errors);
                break;
            }
            case "map":
            {
                if (value is not JsonObject map) { errors.Add($"{path}: expected a map, got {Describe(value)}"); return; }
                var keys = t["keys"]?.AsObject() ?? throw new FormatException($"{path}: map without keys");
                var values = t["values"]?.AsObject() ?? throw new FormatException($"{path}: map without values");
                foreach (var (k, v) in map)
                {
                    Check(keys, JsonValue.Create(k), $"{path} key '{k}'", errors);
                    Check(values, v, $"{path}.{k}", errors);
                }
                break;
            }
            case "record":
            {
                if (value is not JsonObject rec) { errors.Add($"{path}: expected a record, got {Describe(value)}"); return; }
                var fields = t["fields"]!.AsArray().Select(f => f!.AsObject().Single()).ToList();
                foreach (var k in rec.Select(kv => kv.Key))
                {
                    if (!fields.Any(f => f.Key == k)) errors.Add($"{path}.{k}: unknown field");
                }
                foreach (var (name, def) in fields)
                {
                    var d = def!.AsObject();
                    rec.TryGetPropertyValue(name, out var v);
                    if (v is null)
                    {
                        if ((bool?)d["required"] == true && !d.ContainsKey("default")) errors.Add($"{path}.{name}: required field missing");
                        continue;
                    }
                    Check(d, v, $"{path}.{name}", errors);
                }
                break;
            }
            default:
                errors.Add($"{path}: schema type '{type}' is not understood by this validator");
                break;
        }
    }

    private static double Number(JsonNode n) => double.Parse(n.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    private static void OneOf(JsonObject t, JsonNode value, string path, List<string> errors)
    {
        if (t["one_of"] is not JsonArray options) return;
        if (!options.Any(o => JsonNode.DeepEquals(o, value)))
            errors.Add($"{path}: expected one of: {string.Join(", ", options.Select(o => o!.ToJsonString()))}, got {value.ToJsonString()}");
    }

    private static bool IsString(JsonNode value, out string s)
    {
        if (value.GetValueKind() == System.Text.Json.JsonValueKind.String) { s = value.GetValue<string>(); return true; }
        s = "";
        return false;
    }

    private static string Describe(JsonNode value) => value.GetValueKind() switch
    {
        System.Text.Json.JsonValueKind.String => "a string",
        System.Text.Json.JsonValueKind.Number => "a number",
        System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => "a boolean (quote it in YAML to make it a string)",
        System.Text.Json.JsonValueKind.Array => "an array",
        System.Text.Json.JsonValueKind.Object => "an object",
        _ => value.ToJsonString(),
    };
}
