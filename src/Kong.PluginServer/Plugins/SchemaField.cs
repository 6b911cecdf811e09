using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// A Kong schema type definition (typedef) for one config field: what `-dump` prints and what the
/// server checks when an instance starts. Kong's own attribute names and semantics (docs/protocol.md#dump-json).
/// </summary>
public sealed class SchemaType
{
    public required string Type { get; init; }            // string, boolean, integer, number, array, set, map, record
    public bool Required { get; init; }
    /// <summary>The default as JSON text (e.g. "60", "[\"RS256\"]").</summary>
    public string? DefaultJson { get; init; }
    public IReadOnlyList<string>? OneOf { get; init; }
    public (double Min, double Max)? Between { get; init; }
    public int? LenMin { get; init; }
    public SchemaType? Elements { get; init; }             // array/set
    public SchemaType? Keys { get; init; }                 // map
    public SchemaType? Values { get; init; }               // map
    public IReadOnlyList<SchemaField>? Fields { get; init; } // record
    public string? Description { get; init; }

    internal void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("type", Type);
        if (Required) w.WriteBoolean("required", true);
        if (DefaultJson is not null) { w.WritePropertyName("default"); w.WriteRawValue(DefaultJson); }
        if (OneOf is not null)
        {
            w.WriteStartArray("one_of");
            foreach (var o in OneOf) w.WriteStringValue(o);
            w.WriteEndArray();
        }
        if (Between is { } b)
        {
            w.WriteStartArray("between");
            w.WriteNumberValue(b.Min);
            w.WriteNumberValue(b.Max);
            w.WriteEndArray();
        }
        if (LenMin is { } lm) w.WriteNumber("len_min", lm);
        if (Elements is not null) { w.WritePropertyName("elements"); Elements.WriteTo(w); }
        if (Keys is not null) { w.WritePropertyName("keys"); Keys.WriteTo(w); }
        if (Values is not null) { w.WritePropertyName("values"); Values.WriteTo(w); }
        if (Fields is not null) { w.WritePropertyName("fields"); SchemaField.WriteList(w, Fields); }
        if (Description is not null) w.WriteString("description", Description);
        w.WriteEndObject();
    }
}

/// <summary>A named field: in Kong's schema language each entry of `fields` is a one-key object.</summary>
public sealed record SchemaField(string Name, SchemaType Type)
{
    internal static void WriteList(Utf8JsonWriter w, IReadOnlyList<SchemaField> fields)
    {
        w.WriteStartArray();
        foreach (var f in fields)
        {
            w.WriteStartObject();
            w.WritePropertyName(f.Name);
            f.Type.WriteTo(w);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}

/// <summary>Short constructors for schema fields.</summary>
public static class Schema
{
    public static SchemaField String(string name, bool required = false, string? @default = null, IReadOnlyList<string>? oneOf = null,
        int? lenMin = null, string? description = null) =>
        new(name, new SchemaType
        {
            Type = "string", Required = required, OneOf = oneOf, LenMin = lenMin, Description = description,
            DefaultJson = @default is null ? null : JsonSerializer.Serialize(@default, PluginJson.Default.String),
        });

    public static SchemaField Boolean(string name, bool? @default = null, string? description = null) =>
        new(name, new SchemaType { Type = "boolean", DefaultJson = @default is null ? null : @default.Value ? "true" : "false", Description = description });

    public static SchemaField Integer(string name, bool required = false, long? @default = null, (double, double)? between = null, string? description = null) =>
        new(name, new SchemaType
        {
            Type = "integer", Required = required, Between = between, Description = description,
            DefaultJson = @default?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    public static SchemaField Array(string name, SchemaType elements, bool required = false, string? defaultJson = null, int? lenMin = null, string? description = null) =>
        new(name, new SchemaType { Type = "array", Elements = elements, Required = required, DefaultJson = defaultJson, LenMin = lenMin, Description = description });

    public static SchemaField Map(string name, SchemaType keys, SchemaType values, bool required = false, string? defaultJson = null, string? description = null) =>
        new(name, new SchemaType { Type = "map", Keys = keys, Values = values, Required = required, DefaultJson = defaultJson, Description = description });

    public static SchemaField Record(string name, IReadOnlyList<SchemaField> fields, bool required = false, string? description = null) =>
        new(name, new SchemaType { Type = "record", Fields = fields, Required = required, Description = description });

    public static SchemaType StringType(IReadOnlyList<string>? oneOf = null, int? lenMin = null) => new() { Type = "string", OneOf = oneOf, LenMin = lenMin };

    public static SchemaType RecordType(IReadOnlyList<SchemaField> fields) => new() { Type = "record", Fields = fields };

    public static SchemaType ArrayType(SchemaType elements, int? lenMin = null) => new() { Type = "array", Elements = elements, LenMin = lenMin };
}
