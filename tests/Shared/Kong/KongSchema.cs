using System.Text.Json.Nodes;

namespace GitLabCiAuth.TestSupport;

/// <summary>
/// Validates a plugin config against a Kong plugin schema as the binary dumps it for Kong (the subset of Kong's
/// schema language the dump uses: string, boolean, integer, number, array/set with <c>elements</c>, map with
/// <c>keys</c>/<c>values</c>, record with <c>fields</c>, foreign with <c>eq</c>; <c>required</c> (unless a <c>default</c>
/// fills it), <c>one_of</c>, <c>between</c>, <c>len_min</c>, <c>len_max</c>). Unknown field names are errors, like in Kong.
/// <see cref="ValidatePlugin"/> plays Kong's insert of a whole plugin entity, entity checks included
/// (<see cref="KongEntityChecks"/>). Written from Kong's kong/db/schema/init.lua; it reads only the dump's JSON, so it
/// checks the dump independently of the server's own code.
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

    /// <summary>The plugin's schema object (<c>{"name", "fields", "entity_checks"}</c>) in a dump.</summary>
    public static JsonObject PluginSchema(JsonNode dump, string pluginName)
    {
        var plugins = dump is JsonObject o ? o["Plugins"]!.AsArray() : dump.AsArray();
        return plugins.Single(p => (string?)p!["Name"] == pluginName)!["Schema"]!.AsObject();
    }

    /// <summary>
    /// Kong's insert of a plugin entity (<c>{"config": {...}, "consumer": ..., "protocols": [...]}</c>) against the
    /// plugin's schema: defaults are filled and absent optional fields become null (process_auto_fields), every field
    /// is validated, then every entity check runs.
    /// </summary>
    public static KongVerdict ValidatePlugin(JsonObject pluginSchema, JsonObject entity)
    {
        var root = new JsonObject { ["type"] = "record", ["fields"] = pluginSchema["fields"]!.DeepClone() };
        var input = (JsonObject)entity.DeepClone();
        AutoFields(root, input);
        var fieldErrors = new List<string>();
        Check(root, input, "entity", fieldErrors);
        var failures = KongEntityChecks.Run(root, pluginSchema["entity_checks"] as JsonArray, input);
        return new KongVerdict(input, fieldErrors, failures);
    }

    /// <summary>Kong's process_auto_fields for an insert: defaults (deep copies), null for absent optional fields, required records expanded.</summary>
    private static void AutoFields(JsonObject record, JsonObject value)
    {
        foreach (var (name, def) in record["fields"]!.AsArray().Select(f => f!.AsObject().Single()))
        {
            var d = def!.AsObject();
            if (!value.TryGetPropertyValue(name, out var v) || v is null)
            {
                if (d["default"] is { } dflt) value[name] = dflt.DeepClone();
                else if ((bool?)d["required"] != true) value[name] = null;
                else if ((string?)d["type"] == "record") { var r = new JsonObject(); AutoFields(d, r); value[name] = r; }
                else value.Remove(name);   // required and absent: validation reports it
                continue;
            }
            Nested(d, v);
        }

        static void Nested(JsonObject d, JsonNode v)
        {
            switch ((string?)d["type"])
            {
                case "record" when v is JsonObject r:
                    AutoFields(d, r);
                    break;
                case "array" or "set" when v is JsonArray a && d["elements"] is JsonObject el:
                    foreach (var item in a) if (item is not null) Nested(el, item);
                    break;
                case "map" when v is JsonObject m && d["values"] is JsonObject vals:
                    foreach (var (_, item) in m) if (item is not null) Nested(vals, item);
                    break;
            }
        }
    }

    internal static void Check(JsonObject t, JsonNode? value, string path, List<string> errors)
    {
        string type = (string?)t["type"] ?? throw new FormatException($"{path}: schema entry without a type");
        if (type == "foreign")
        {
            // typedefs.no_consumer and friends: `eq = null`, nothing may be referenced
            if (t.ContainsKey("eq") && t["eq"] is null && value is not null) errors.Add($"{path}: value must be null");
            return;
        }
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

/// <summary>What Kong says about a plugin entity: the entity after its auto fields, field errors, failed entity checks.</summary>
public sealed record KongVerdict(JsonObject Entity, List<string> FieldErrors, List<KongCheckFailure> CheckFailures)
{
    public bool Accepted => FieldErrors.Count == 0 && CheckFailures.Count == 0;

    public override string ToString() =>
        Accepted ? "accepted" : string.Join("\n", FieldErrors.Concat(CheckFailures.Select(f => f.ToString())));
}

/// <summary>One entity check that refused the entity: its position in <c>entity_checks</c>, its kind and argument, Kong's message.</summary>
public sealed record KongCheckFailure(int Index, string Kind, JsonNode Argument, string Message, string? FieldError)
{
    public override string ToString() => $"entity_checks[{Index}] {Kind} {Argument.ToJsonString()}: {Message}" + (FieldError is null ? "" : $" ({FieldError})");
}
