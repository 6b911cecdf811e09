using System.Globalization;
using System.Text.Json;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// A Kong schema type definition (typedef) for one field: what `-dump` prints and what the server checks
/// when an instance starts. Kong's own attribute names and semantics (docs/protocol.md#dump-json).
/// </summary>
public sealed class SchemaType
{
    public required string Type { get; init; }            // string, boolean, integer, number, array, set, map, record, foreign
    public bool Required { get; init; }
    /// <summary>The default as JSON text (e.g. "60", "[\"RS256\"]").</summary>
    public string? DefaultJson { get; init; }
    /// <summary><c>eq</c> as JSON text; <c>"null"</c> makes a field that must stay empty (Kong's <c>typedefs.no_consumer</c>).</summary>
    public string? EqJson { get; init; }
    /// <summary>The entity a <c>foreign</c> field points to (e.g. "consumers").</summary>
    public string? Reference { get; init; }
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
        if (Reference is not null) w.WriteString("reference", Reference);
        if (Required) w.WriteBoolean("required", true);
        if (DefaultJson is not null) { w.WritePropertyName("default"); w.WriteRawValue(DefaultJson); }
        if (EqJson is not null) { w.WritePropertyName("eq"); w.WriteRawValue(EqJson); }
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

/// <summary>
/// A named field: in Kong's schema language each entry of `fields` is a one-key object. The typed accessors
/// (<see cref="IntegerDefault"/>, <see cref="Allows"/>, ...) let a plugin's own code read a field's default
/// and range from this one declaration instead of repeating them.
/// </summary>
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

    /// <summary>The default of an integer field.</summary>
    public int IntegerDefault => Type.Type == "integer" && Type.DefaultJson is { } d
        ? int.Parse(d, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"{Name} is not an integer field with a default");

    /// <summary>The default of a number (or integer) field.</summary>
    public double NumberDefault => Type.Type is "number" or "integer" && Type.DefaultJson is { } d
        ? double.Parse(d, NumberStyles.Float, CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"{Name} is not a number field with a default");

    /// <summary>The default of a boolean field.</summary>
    public bool BooleanDefault => Type.Type == "boolean" && Type.DefaultJson is { } d
        ? d == "true"
        : throw new InvalidOperationException($"{Name} is not a boolean field with a default");

    /// <summary>The default of a string field.</summary>
    public string StringDefault => Type.Type == "string" && Type.DefaultJson is { } d
        ? JsonSerializer.Deserialize(d, PluginJson.Default.String)!
        : throw new InvalidOperationException($"{Name} is not a string field with a default");

    /// <summary>The default of an array (or set) of strings.</summary>
    public IReadOnlyList<string> StringListDefault => Type.Type is "array" or "set" && Type.DefaultJson is { } d
        ? JsonSerializer.Deserialize(d, PluginJson.Default.StringArray)!
        : throw new InvalidOperationException($"{Name} is not an array field with a default");

    /// <summary>Whether a number is within the field's <c>between</c> (true when it declares none).</summary>
    public bool Allows(double value) => Type.Between is not { } b || (value >= b.Min && value <= b.Max);

    /// <summary>"between MIN and MAX", for messages.</summary>
    public string RangeText => Type.Between is { } b
        ? string.Create(CultureInfo.InvariantCulture, $"between {b.Min} and {b.Max}")
        : "any value";
}

/// <summary>Short constructors for schema fields.</summary>
public static class Schema
{
    /// <summary>The protocols of Kong's http subsystem, sorted as Kong sorts them.</summary>
    public static readonly IReadOnlyList<string> HttpProtocols = ["grpc", "grpcs", "http", "https"];

    public static SchemaField String(string name, bool required = false, string? @default = null, IReadOnlyList<string>? oneOf = null,
        int? lenMin = null, string? description = null) =>
        new(name, new SchemaType
        {
            Type = "string", Required = required, OneOf = oneOf, LenMin = lenMin, Description = description,
            DefaultJson = @default is null ? null : JsonSerializer.Serialize(@default, PluginJson.Default.String),
        });

    public static SchemaField Boolean(string name, bool? @default = null, string? description = null, bool required = false) =>
        new(name, new SchemaType { Type = "boolean", Required = required, DefaultJson = @default is null ? null : @default.Value ? "true" : "false", Description = description });

    public static SchemaField Integer(string name, bool required = false, long? @default = null, (double, double)? between = null, string? description = null) =>
        new(name, new SchemaType
        {
            Type = "integer", Required = required, Between = between, Description = description,
            DefaultJson = @default?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    public static SchemaField Number(string name, bool required = false, double? @default = null, (double, double)? between = null, string? description = null) =>
        new(name, new SchemaType
        {
            Type = "number", Required = required, Between = between, Description = description,
            DefaultJson = @default?.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
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

    public static SchemaType MapType(SchemaType keys, SchemaType values) => new() { Type = "map", Keys = keys, Values = values };

    /// <summary>An element or map value of type boolean, integer or number.</summary>
    public static SchemaType ScalarType(string type) => new() { Type = type };

    // ---- Kong's typedefs for the top-level fields of a plugin entity (kong/db/schema/typedefs.lua) ----

    /// <summary><c>consumer = typedefs.no_consumer</c>: the plugin cannot be scoped to a Consumer (Kong refuses a plugin entity with a consumer).</summary>
    public static SchemaField NoConsumer() => NoForeign("consumer", "consumers");

    /// <summary><c>route = typedefs.no_route</c>: the plugin cannot be applied to a Route.</summary>
    public static SchemaField NoRoute() => NoForeign("route", "routes");

    /// <summary><c>service = typedefs.no_service</c>: the plugin cannot be applied to a Service.</summary>
    public static SchemaField NoService() => NoForeign("service", "services");

    /// <summary><c>protocols = typedefs.protocols_http</c>: http, https, grpc, grpcs (the default: all four).</summary>
    public static SchemaField ProtocolsHttp() =>
        new("protocols", new SchemaType
        {
            Type = "set", Required = true,
            DefaultJson = JsonSerializer.Serialize(HttpProtocols.ToArray(), PluginJson.Default.StringArray),
            Elements = new SchemaType { Type = "string", OneOf = HttpProtocols },
        });

    private static SchemaField NoForeign(string name, string reference) =>
        new(name, new SchemaType { Type = "foreign", Reference = reference, EqJson = "null" });
}
