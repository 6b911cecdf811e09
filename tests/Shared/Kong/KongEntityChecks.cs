using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GitLabCiAuth.TestSupport;

/// <summary>
/// Kong's entity checkers (Schema.entity_checkers in kong/db/schema/init.lua) over a plugin entity as JSON, written
/// from Kong's Lua: <c>at_least_one_of</c>, <c>only_one_of</c>, <c>distinct</c>, <c>conditional</c>,
/// <c>conditional_at_least_one_of</c>, <c>mutually_required</c>, <c>mutually_exclusive</c>,
/// <c>mutually_exclusive_sets</c>. <c>conditional</c>'s if_match/then_match inherit the named field's attributes, as
/// Kong's metatable does. A check of a kind Kong does not know fails the test (Kong would fail to load the schema).
/// </summary>
public static class KongEntityChecks
{
    public static readonly IReadOnlySet<string> Kinds = new HashSet<string>
    {
        "at_least_one_of", "conditional_at_least_one_of", "only_one_of", "distinct", "conditional",
        "mutually_required", "mutually_exclusive", "mutually_exclusive_sets",
    };

    /// <summary>Runs each check on an entity whose auto fields are filled (absent optional fields are JSON null).</summary>
    public static List<KongCheckFailure> Run(JsonObject schemaRecord, JsonArray? checks, JsonObject entity)
    {
        var failures = new List<KongCheckFailure>();
        if (checks is null) return failures;
        for (int i = 0; i < checks.Count; i++)
        {
            var (kind, arg) = checks[i]!.AsObject().Single();
            if (!Kinds.Contains(kind)) throw new InvalidOperationException($"entity_checks[{i}]: Kong has no entity checker '{kind}'");
            var failure = RunOne(schemaRecord, kind, arg!, entity);
            if (failure is { } f) failures.Add(new KongCheckFailure(i, kind, arg!, f.Message, f.FieldError));
        }
        return failures;
    }

    private static (string Message, string? FieldError)? RunOne(JsonObject schema, string kind, JsonNode arg, JsonObject entity)
    {
        JsonNode? Get(string name) => GetField(entity, name, out _);
        bool Set(string name) => IsNonEmpty(Get(name));
        List<string> Names(JsonNode? list) => list!.AsArray().Select(n => (string)n!).ToList();

        switch (kind)
        {
            case "at_least_one_of":
            {
                var names = Names(arg);
                return names.Any(Set) ? null : ($"at least one of these fields must be non-empty: {Quoted(names)}", null);
            }
            case "only_one_of":
            {
                var names = Names(arg);
                return names.Count(Set) == 1 ? null : ($"exactly one of these fields must be non-empty: {Quoted(names)}", null);
            }
            case "distinct":
            {
                var seen = new HashSet<string>();
                var names = Names(arg);
                foreach (var n in names)
                {
                    var v = Get(n);
                    if (!IsNonEmpty(v) || v is JsonObject or JsonArray) continue;   // Lua tables are never equal
                    if (!seen.Add(v!.ToJsonString())) return ($"values of these fields must be distinct: {Quoted(names)}", null);
                }
                return null;
            }
            case "mutually_required":
            {
                var names = Names(arg);
                int n = names.Count(Set);
                return n == 0 || n == names.Count ? null : ($"all or none of these fields must be set: {Quoted(names)}", null);
            }
            case "mutually_exclusive":
            {
                var names = Names(arg);
                return names.Count(Set) <= 1 ? null : ($"only one or none of these fields must be set: {Quoted(names)}", null);
            }
            case "mutually_exclusive_sets":
            {
                var a = Names(arg["set1"]).Where(Set).ToList();
                var b = Names(arg["set2"]).Where(Set).ToList();
                return a.Count > 0 && b.Count > 0 ? ($"these sets are mutually exclusive: ({Quoted(a)}), ({Quoted(b)})", null) : null;
            }
            case "conditional":
            {
                string ifField = (string)arg["if_field"]!, thenField = (string)arg["then_field"]!;
                var ifMatch = Inherit(arg["if_match"]!.AsObject(), SchemaField(schema, ifField));
                if (ValidateField(ifMatch, Get(ifField)) is not null) return null;
                var thenMatch = Inherit(arg["then_match"]!.AsObject(), SchemaField(schema, thenField));
                var thenValue = Get(thenField);
                string? err = (bool?)thenMatch["required"] == true && thenValue is null
                    ? "required field missing"
                    : ValidateField(thenMatch, thenValue);
                if (err is null) return null;
                string message = arg["then_err"] is { } te
                    ? LuaFormat((string)te!, ifField)
                    : $"failed conditional validation given value of field '{ifField}'";
                return (message, $"{thenField}: {err}");
            }
            case "conditional_at_least_one_of":
            {
                string ifField = (string)arg["if_field"]!;
                var value = GetField(entity, ifField, out bool found);
                if (!found) return null;   // nil (a null still runs the check)
                var ifMatch = Inherit(arg["if_match"]!.AsObject(), SchemaField(schema, ifField));
                if (ValidateField(ifMatch, value) is null)
                {
                    var names = Names(arg["then_at_least_one_of"]);
                    return names.Any(Set) ? null : (arg["then_err"] is { } e ? LuaFormat((string)e!, Quoted(names)) : $"at least one of these fields must be non-empty: {Quoted(names)}", null);
                }
                if (arg["else_match"] is not JsonObject elseMatch) return null;
                if (ValidateField(Inherit(elseMatch, SchemaField(schema, ifField)), value) is not null) return null;
                var elseNames = Names(arg["else_then_at_least_one_of"]);
                return elseNames.Any(Set) ? null : (arg["else_then_err"] is { } ee ? LuaFormat((string)ee!, Quoted(elseNames)) : $"at least one of these fields must be non-empty: {Quoted(elseNames)}", null);
            }
            default:
                throw new InvalidOperationException(kind);
        }
    }

    /// <summary>Kong's get_field over a dotted path; JSON null and a missing path both read as nil here.</summary>
    private static JsonNode? GetField(JsonObject entity, string name, out bool found)
    {
        JsonNode? node = entity;
        found = true;
        foreach (var part in name.Split('.'))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(part, out node)) { found = false; return null; }
        }
        return node;
    }

    /// <summary>Kong's get_schema_field: the typedef a dotted path names; the test fails when there is none (Kong would raise).</summary>
    private static JsonObject SchemaField(JsonObject record, string name)
    {
        JsonObject current = record;
        foreach (var part in name.Split('.'))
        {
            var fields = current["fields"]?.AsArray() ?? throw new InvalidOperationException($"'{name}' goes through a field without fields");
            current = fields.Select(f => f!.AsObject().Single()).Where(kv => kv.Key == part).Select(kv => kv.Value!.AsObject()).FirstOrDefault()
                ?? throw new InvalidOperationException($"the schema has no field '{name}'");
        }
        return current;
    }

    /// <summary>setmetatable(match, {__index = field}): the match's own attributes, then the field's.</summary>
    private static JsonObject Inherit(JsonObject match, JsonObject field)
    {
        var merged = (JsonObject)field.DeepClone();
        foreach (var (k, v) in match) merged[k] = v?.DeepClone();
        return merged;
    }

    /// <summary>Schema:validate_field for the validators entity checks use; null when the value passes.</summary>
    private static string? ValidateField(JsonObject field, JsonNode? value)
    {
        bool eqNull = field.ContainsKey("eq") && field["eq"] is null;
        bool neNull = field.ContainsKey("ne") && field["ne"] is null;
        if (value is null)
        {
            if (neNull) return "value must not be null";
            if (field["eq"] is { } eq) return $"value must be {LuaToString(eq)}";
            if ((bool?)field["required"] == true) return "required field missing";
            return null;
        }
        if (eqNull) return "value must be null";
        // the type and the field's own validators (one_of, between, len_min, len_max, elements ...)
        var typeErrors = new List<string>();
        var plain = (JsonObject)field.DeepClone();
        foreach (var k in new[] { "eq", "ne", "gt", "starts_with", "not_one_of", "contains", "len_eq", "required", "default" }) plain.Remove(k);
        KongSchema.Check(plain, value, "v", typeErrors);
        if (field["eq"] is { } want && !JsonNode.DeepEquals(want, value)) return $"value must be {LuaToString(want)}";
        if (field["ne"] is { } unwanted && JsonNode.DeepEquals(unwanted, value)) return $"value must not be {LuaToString(value)}";
        if (field["not_one_of"] is JsonArray notOneOf && notOneOf.Any(o => JsonNode.DeepEquals(o, value)))
            return "must not be one of: " + string.Join(", ", notOneOf.Select(o => LuaToString(o!)));
        if (typeErrors.Count > 0) return typeErrors[0]["v: ".Length..];
        if (field["gt"] is { } gt && value.GetValueKind() == JsonValueKind.Number && !(Number(value) > Number(gt)))
            return $"value must be greater than {LuaToString(gt)}";
        if (field["len_eq"] is { } leq && Length(value) is { } len && len != (int)leq) return $"length must be {(int)leq}";
        if (field["starts_with"] is { } sw && value.GetValueKind() == JsonValueKind.String && !((string)value!).StartsWith((string)sw!, StringComparison.Ordinal))
            return $"should start with: {(string)sw!}";
        if (field["contains"] is { } c && value is JsonArray arr && !arr.Any(x => JsonNode.DeepEquals(x, c)))
            return $"expected to contain: {LuaToString(c)}";
        return null;
    }

    private static int? Length(JsonNode v) => v switch
    {
        JsonArray a => a.Count,
        JsonObject o => o.Count,
        _ when v.GetValueKind() == JsonValueKind.String => Encoding.UTF8.GetByteCount((string)v!),
        _ => null,
    };

    private static double Number(JsonNode n) => double.Parse(n.ToJsonString(), CultureInfo.InvariantCulture);

    /// <summary>Kong's is_nonempty: not nil/null, not an empty table, not "".</summary>
    public static bool IsNonEmpty(JsonNode? v) => v switch
    {
        null => false,
        JsonArray a => a.Count > 0,
        JsonObject o => o.Count > 0,
        _ when v.GetValueKind() == JsonValueKind.String => ((string)v!).Length > 0,
        _ => true,
    };

    private static string Quoted(IEnumerable<string> names) => string.Join(", ", names.Select(n => $"'{n}'"));

    private static string LuaToString(JsonNode v) => v.GetValueKind() == JsonValueKind.String ? (string)v! : v.ToJsonString();

    /// <summary>Lua's string.format with one %s argument (and %%); anything else raises in Kong.</summary>
    private static string LuaFormat(string format, string arg)
    {
        var sb = new StringBuilder();
        bool used = false;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%') { sb.Append(format[i]); continue; }
            if (i + 1 >= format.Length) throw new FormatException($"Lua's string.format raises on '{format}'");
            char c = format[++i];
            if (c == '%') sb.Append('%');
            else if (c == 's' && !used) { sb.Append(arg); used = true; }
            else throw new FormatException($"Lua's string.format raises on '{format}' (bad argument or missing value)");
        }
        return sb.ToString();
    }
}
