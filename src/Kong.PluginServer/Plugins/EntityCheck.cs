using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// A cross-field rule in Kong's schema language (the schema's <c>entity_checks</c>, kong/db/schema/init.lua):
/// printed by `-dump` so that Kong refuses a bad plugin entity in the Admin API, in a declarative file or on a
/// control plane, and enforced by the server when an instance starts with Kong's semantics (a field counts as set
/// when it is not null, not "" and not an empty array or map).
/// Field names are paths from the plugin entity, as Kong writes them: <c>config.jwks_uri</c>. The server sees only
/// the config, so it enforces the checks whose fields are all under <c>config.</c>; Kong enforces every check.
/// </summary>
public abstract class EntityCheck
{
    private protected EntityCheck(string kind) => Kind = kind;

    /// <summary>Kong's name of the checker (<c>mutually_exclusive</c>, <c>conditional</c>, ...).</summary>
    public string Kind { get; }

    /// <summary>The fields the check reads, as entity paths (<c>config.x</c>).</summary>
    public abstract IReadOnlyList<string> Fields { get; }

    /// <summary>Whether the server can evaluate it: every field is inside <c>config</c>.</summary>
    public bool IsConfigOnly => Fields.All(f => f.StartsWith(ConfigPrefix, StringComparison.Ordinal));

    internal const string ConfigPrefix = "config.";

    internal void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WritePropertyName(Kind);
        WriteArgument(w);
        w.WriteEndObject();
    }

    private protected abstract void WriteArgument(Utf8JsonWriter w);

    /// <summary>Null when the entity passes; otherwise the field to blame (an entity path) and Kong's message.</summary>
    internal abstract (string Field, string Message)? Evaluate(Func<string, JsonElement?> get);

    /// <summary>One line for people: the rule as Kong declares it.</summary>
    public abstract string Describe();

    /// <summary>At most one of the fields may be set.</summary>
    public static EntityCheck MutuallyExclusive(params string[] fields) => new ListCheck("mutually_exclusive", fields);

    /// <summary>All of the fields or none of them.</summary>
    public static EntityCheck MutuallyRequired(params string[] fields) => new ListCheck("mutually_required", fields);

    /// <summary>At least one of the fields must be set.</summary>
    public static EntityCheck AtLeastOneOf(params string[] fields) => new ListCheck("at_least_one_of", fields);

    /// <summary>Exactly one of the fields must be set.</summary>
    public static EntityCheck OnlyOneOf(params string[] fields) => new ListCheck("only_one_of", fields);

    /// <summary>The set fields must have distinct values.</summary>
    public static EntityCheck Distinct(params string[] fields) => new ListCheck("distinct", fields);

    /// <summary>Fields of <paramref name="set1"/> and fields of <paramref name="set2"/> cannot both be set.</summary>
    public static EntityCheck MutuallyExclusiveSets(IReadOnlyList<string> set1, IReadOnlyList<string> set2) => new SetsCheck(set1, set2);

    /// <summary>
    /// When <paramref name="ifField"/> passes <paramref name="ifMatch"/>, <paramref name="thenField"/> must pass
    /// <paramref name="thenMatch"/>. <paramref name="thenErr"/> is Kong's extra entity error; one <c>%s</c> in it
    /// stands for <paramref name="ifField"/>.
    /// </summary>
    public static EntityCheck Conditional(string ifField, FieldMatch ifMatch, string thenField, FieldMatch thenMatch, string? thenErr = null) =>
        new ConditionalCheck(ifField, ifMatch, thenField, thenMatch, thenErr);

    /// <summary>Kong's <c>is_nonempty</c>.</summary>
    internal static bool IsSet(JsonElement? v) => v is { } e && e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => false,
        JsonValueKind.String => e.GetString()!.Length > 0,
        JsonValueKind.Array => e.GetArrayLength() > 0,
        JsonValueKind.Object => e.EnumerateObject().Any(),
        _ => true,
    };

    /// <summary>Kong's <c>quoted_list</c>: 'a', 'b'.</summary>
    internal static string Quoted(IEnumerable<string> names) => string.Join(", ", names.Select(n => $"'{n}'"));

    private sealed class ListCheck : EntityCheck
    {
        private readonly string[] _fields;

        public ListCheck(string kind, string[] fields) : base(kind)
        {
            if (fields.Length < 2) throw new ArgumentException($"{kind} needs at least two fields", nameof(fields));
            _fields = fields;
        }

        public override IReadOnlyList<string> Fields => _fields;

        private protected override void WriteArgument(Utf8JsonWriter w)
        {
            w.WriteStartArray();
            foreach (var f in _fields) w.WriteStringValue(f);
            w.WriteEndArray();
        }

        internal override (string Field, string Message)? Evaluate(Func<string, JsonElement?> get)
        {
            var set = _fields.Where(f => IsSet(get(f))).ToList();
            string list = Quoted(_fields);
            switch (Kind)
            {
                case "mutually_exclusive":
                    return set.Count <= 1 ? null : (set[1], $"only one or none of these fields must be set: {list}");
                case "mutually_required":
                    return set.Count == 0 || set.Count == _fields.Length ? null
                        : (_fields.First(f => !set.Contains(f)), $"all or none of these fields must be set: {list}");
                case "at_least_one_of":
                    return set.Count > 0 ? null : (_fields[0], $"at least one of these fields must be non-empty: {list}");
                case "only_one_of":
                    return set.Count == 1 ? null : (set.Count == 0 ? _fields[0] : set[1], $"exactly one of these fields must be non-empty: {list}");
                case "distinct":
                {
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var f in set)
                    {
                        var v = get(f)!.Value;
                        // Kong compares with Lua equality: strings, numbers and booleans by value, tables never equal
                        if (v.ValueKind is JsonValueKind.Array or JsonValueKind.Object) continue;
                        if (!seen.Add(v.GetRawText())) return (f, $"values of these fields must be distinct: {list}");
                    }
                    return null;
                }
                default:
                    throw new InvalidOperationException(Kind);
            }
        }

        public override string Describe() => Kind switch
        {
            "mutually_exclusive" => $"at most one of {Names(_fields)} may be set",
            "mutually_required" => $"{Names(_fields)}: all or none",
            "at_least_one_of" => $"at least one of {Names(_fields)} must be set",
            "only_one_of" => $"exactly one of {Names(_fields)} must be set",
            _ => $"{Names(_fields)} must differ",
        };
    }

    private sealed class SetsCheck(IReadOnlyList<string> set1, IReadOnlyList<string> set2) : EntityCheck("mutually_exclusive_sets")
    {
        public override IReadOnlyList<string> Fields { get; } = [.. set1, .. set2];

        private protected override void WriteArgument(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteStartArray("set1");
            foreach (var f in set1) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("set2");
            foreach (var f in set2) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        internal override (string Field, string Message)? Evaluate(Func<string, JsonElement?> get)
        {
            var a = set1.Where(f => IsSet(get(f))).ToList();
            var b = set2.Where(f => IsSet(get(f))).ToList();
            return a.Count > 0 && b.Count > 0 ? (b[0], $"these sets are mutually exclusive: ({Quoted(a)}), ({Quoted(b)})") : null;
        }

        public override string Describe() => $"{Names(set1)} and {Names(set2)} exclude each other";
    }

    private sealed class ConditionalCheck : EntityCheck
    {
        private readonly string _ifField, _thenField;
        private readonly FieldMatch _ifMatch, _thenMatch;
        private readonly string? _thenErr;

        public ConditionalCheck(string ifField, FieldMatch ifMatch, string thenField, FieldMatch thenMatch, string? thenErr) : base("conditional")
        {
            _ifField = ifField;
            _ifMatch = ifMatch;
            _thenField = thenField;
            _thenMatch = thenMatch;
            _thenErr = thenErr;
            // Kong formats then_err with Lua's string.format and the if_field: anything but one %s (or %%) raises there
            if (thenErr is not null)
            {
                var rest = thenErr.Replace("%%", "", StringComparison.Ordinal);
                int s = rest.Split("%s").Length - 1;
                if (s > 1 || rest.Replace("%s", "", StringComparison.Ordinal).Contains('%'))
                    throw new ArgumentException("then_err may hold one %s (the if_field) and %% only", nameof(thenErr));
            }
        }

        public override IReadOnlyList<string> Fields => [_ifField, _thenField];

        private protected override void WriteArgument(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("if_field", _ifField);
            w.WritePropertyName("if_match");
            _ifMatch.WriteTo(w);
            w.WriteString("then_field", _thenField);
            w.WritePropertyName("then_match");
            _thenMatch.WriteTo(w);
            if (_thenErr is not null) w.WriteString("then_err", _thenErr);
            w.WriteEndObject();
        }

        internal override (string Field, string Message)? Evaluate(Func<string, JsonElement?> get)
        {
            if (_ifMatch.Check(get(_ifField)) is not null) return null;   // the condition does not hold
            if (_thenMatch.Check(get(_thenField)) is not { } error) return null;
            string why = _thenErr is null
                ? $"failed conditional validation given value of field '{_ifField}'"
                : _thenErr.Replace("%s", _ifField, StringComparison.Ordinal).Replace("%%", "%", StringComparison.Ordinal);
            return (_thenField, $"{error} ({why})");
        }

        public override string Describe() => $"when `{Short(_ifField)}` {_ifMatch.Describe()}, `{Short(_thenField)}` {_thenMatch.Describe()}";
    }

    private static string Names(IEnumerable<string> fields) => string.Join(", ", fields.Select(f => $"`{Short(f)}`"));

    private static string Short(string field) => field.StartsWith(ConfigPrefix, StringComparison.Ordinal) ? field[ConfigPrefix.Length..] : field;
}

/// <summary>
/// The field validators a <see cref="EntityCheck.Conditional"/> applies to its if/then field (Kong's <c>if_match</c>
/// and <c>then_match</c>). Kong's <c>match</c> family (Lua patterns) is left out on purpose: the server could not
/// apply it with Kong's semantics.
/// </summary>
public sealed class FieldMatch
{
    public bool Required { get; init; }
    /// <summary><c>eq</c> as JSON text (<c>"\"id\""</c>, <c>"false"</c>, <c>"null"</c>).</summary>
    public string? EqJson { get; init; }
    /// <summary><c>ne</c> as JSON text.</summary>
    public string? NeJson { get; init; }
    public IReadOnlyList<string>? OneOf { get; init; }
    public IReadOnlyList<string>? NotOneOf { get; init; }
    public double? Gt { get; init; }
    public (double Min, double Max)? Between { get; init; }
    public int? LenMin { get; init; }
    public int? LenMax { get; init; }
    public string? StartsWith { get; init; }

    /// <summary>The field must be set (not null).</summary>
    public static FieldMatch IsRequired { get; } = new() { Required = true };

    public static FieldMatch Eq(string value) => new() { EqJson = JsonSerializer.Serialize(value, PluginJson.Default.String) };

    public static FieldMatch Eq(bool value) => new() { EqJson = value ? "true" : "false" };

    public static FieldMatch Eq(long value) => new() { EqJson = value.ToString(CultureInfo.InvariantCulture) };

    public static FieldMatch StartingWith(string prefix) => new() { StartsWith = prefix };

    internal void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        if (Required) w.WriteBoolean("required", true);
        if (EqJson is not null) { w.WritePropertyName("eq"); w.WriteRawValue(EqJson); }
        if (NeJson is not null) { w.WritePropertyName("ne"); w.WriteRawValue(NeJson); }
        if (OneOf is not null) WriteList(w, "one_of", OneOf);
        if (NotOneOf is not null) WriteList(w, "not_one_of", NotOneOf);
        if (Gt is { } gt) w.WriteNumber("gt", gt);
        if (Between is { } b)
        {
            w.WriteStartArray("between");
            w.WriteNumberValue(b.Min);
            w.WriteNumberValue(b.Max);
            w.WriteEndArray();
        }
        if (LenMin is { } lmin) w.WriteNumber("len_min", lmin);
        if (LenMax is { } lmax) w.WriteNumber("len_max", lmax);
        if (StartsWith is not null) w.WriteString("starts_with", StartsWith);
        w.WriteEndObject();
    }

    private static void WriteList(Utf8JsonWriter w, string name, IReadOnlyList<string> items)
    {
        w.WriteStartArray(name);
        foreach (var i in items) w.WriteStringValue(i);
        w.WriteEndArray();
    }

    /// <summary>Kong's <c>Schema:validate_field</c> for these validators: null when the value passes, else Kong's message.</summary>
    internal string? Check(JsonElement? value)
    {
        bool isNull = value is not { } e0 || e0.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;
        if (isNull)
        {
            if (NeJson == "null") return "value must not be null";
            if (EqJson is not null && EqJson != "null") return $"value must be {LuaText(EqJson)}";
            if (Required) return "required field missing";
            return null;
        }
        var v = value!.Value;
        if (EqJson == "null") return "value must be null";
        if (EqJson is not null && !JsonEquals(v, EqJson)) return $"value must be {LuaText(EqJson)}";
        if (NeJson is not null && JsonEquals(v, NeJson)) return $"value must not be {LuaText(v.GetRawText())}";
        if (NotOneOf is not null && v.ValueKind == JsonValueKind.String && NotOneOf.Contains(v.GetString()!))
            return $"must not be one of: {string.Join(", ", NotOneOf)}";
        if (OneOf is not null && !(v.ValueKind == JsonValueKind.String && OneOf.Contains(v.GetString()!)))
            return $"expected one of: {string.Join(", ", OneOf)}";
        if (v.ValueKind == JsonValueKind.Number)
        {
            double d = v.GetDouble();
            if (Gt is { } gt && !(d > gt)) return $"value must be greater than {gt.ToString(CultureInfo.InvariantCulture)}";
            if (Between is { } b && (d < b.Min || d > b.Max))
                return string.Create(CultureInfo.InvariantCulture, $"value should be between {(long)b.Min} and {(long)b.Max}");
        }
        int? length = v.ValueKind switch
        {
            JsonValueKind.String => Encoding.UTF8.GetByteCount(v.GetString()!),   // Lua's # counts bytes
            JsonValueKind.Array => v.GetArrayLength(),
            JsonValueKind.Object => v.EnumerateObject().Count(),
            _ => null,
        };
        if (length is { } n)
        {
            if (LenMin is { } lmin && n < lmin) return $"length must be at least {lmin}";
            if (LenMax is { } lmax && n > lmax) return $"length must be at most {lmax}";
        }
        if (StartsWith is not null && v.ValueKind == JsonValueKind.String && !v.GetString()!.StartsWith(StartsWith, StringComparison.Ordinal))
            return $"should start with: {StartsWith}";
        return null;
    }

    internal string Describe()
    {
        var parts = new List<string>();
        if (Required) parts.Add("must be set");
        if (EqJson is not null) parts.Add($"is {EqJson}");
        if (NeJson is not null) parts.Add($"is not {NeJson}");
        if (OneOf is not null) parts.Add("is one of " + string.Join(", ", OneOf));
        if (NotOneOf is not null) parts.Add("is none of " + string.Join(", ", NotOneOf));
        if (Gt is { } gt) parts.Add($"is greater than {gt.ToString(CultureInfo.InvariantCulture)}");
        if (Between is { } b) parts.Add(string.Create(CultureInfo.InvariantCulture, $"is between {b.Min} and {b.Max}"));
        if (LenMin is { } lmin) parts.Add($"has at least {lmin} elements or characters");
        if (LenMax is { } lmax) parts.Add($"has at most {lmax} elements or characters");
        if (StartsWith is not null) parts.Add($"starts with `{StartsWith}` when set");
        return string.Join(" and ", parts);
    }

    private static bool JsonEquals(JsonElement v, string json)
    {
        using var doc = JsonDocument.Parse(json);
        var w = doc.RootElement;
        return (v.ValueKind, w.ValueKind) switch
        {
            (JsonValueKind.String, JsonValueKind.String) => v.GetString() == w.GetString(),
            (JsonValueKind.Number, JsonValueKind.Number) => v.GetDouble() == w.GetDouble(),
            (JsonValueKind.True, JsonValueKind.True) or (JsonValueKind.False, JsonValueKind.False) => true,
            _ => false,
        };
    }

    /// <summary>How Lua's tostring shows a JSON scalar in Kong's messages.</summary>
    private static string LuaText(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.ValueKind == JsonValueKind.String ? doc.RootElement.GetString()! : json;
    }
}
