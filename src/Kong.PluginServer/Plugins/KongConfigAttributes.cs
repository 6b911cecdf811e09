namespace Kong.PluginServer.Plugins;

/// <summary>
/// Declares a plugin's config once: on a <c>partial</c> class, the Kong.PluginServer generator implements
/// <see cref="IKongConfig{TSelf}"/> from the settable public properties (the schema fields, in declaration order),
/// emits <c>Fields.&lt;Property&gt;</c> (each field's <see cref="SchemaField"/>), a reader of the normalized config
/// JSON, and a parameterless constructor that applies the declared defaults (unless the class declares one).
/// See docs/config-generator.md.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KongConfigAttribute : Attribute;

/// <summary>
/// A <c>partial</c> class used as a record field (<c>type = "record"</c>) of a config, or as the elements of an
/// array or the values of a map: generated like a <see cref="KongConfigAttribute"/> class.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KongRecordAttribute : Attribute;

/// <summary>
/// Kong's declaration of one config field. Without it a settable public property is still a field, named in
/// snake_case, with no default and no rule.
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KongFieldAttribute : Attribute
{
    /// <summary>The field's name in Kong's schema; default: the property name in snake_case.</summary>
    public string? Name { get; set; }

    /// <summary>The default of a string, boolean, integer or number field (its C# type must match the property's).</summary>
    public object? Default { get; set; }

    /// <summary>The default of an array or map field, as JSON (e.g. <c>["RS256"]</c>).</summary>
    public string? DefaultJson { get; set; }

    /// <summary>Lower bound of Kong's <c>between</c> (integer and number fields; set <see cref="Max"/> too).</summary>
    public double Min { get; set; }

    /// <summary>Upper bound of Kong's <c>between</c> (integer and number fields; set <see cref="Min"/> too).</summary>
    public double Max { get; set; }

    /// <summary>Kong's <c>one_of</c> of a string field.</summary>
    public string[]? OneOf { get; set; }

    /// <summary>Kong's <c>len_min</c>: the least length of a string, or the least number of elements of an array.</summary>
    public int LenMin { get; set; }

    /// <summary><c>one_of</c> of the elements of an array of strings (or of the arrays a map holds).</summary>
    public string[]? ElementOneOf { get; set; }

    /// <summary><c>len_min</c> of the elements of an array of strings (or of the arrays a map holds).</summary>
    public int ElementLenMin { get; set; }

    /// <summary><c>one_of</c> of the keys of a map.</summary>
    public string[]? KeyOneOf { get; set; }

    /// <summary><c>len_min</c> of the keys of a map.</summary>
    public int KeyLenMin { get; set; }

    /// <summary><c>one_of</c> of the values of a map of strings.</summary>
    public string[]? ValueOneOf { get; set; }

    /// <summary><c>len_min</c> of the values of a map: a string's length, or an array's number of elements.</summary>
    public int ValueLenMin { get; set; }

    /// <summary>Kong's <c>required</c>: the config must give the field (a default satisfies it).</summary>
    public bool Required { get; set; }

    /// <summary>What the field does: the schema's <c>description</c>, shown in Kong's schema endpoint and docs.</summary>
    public string? Description { get; set; }
}

/// <summary>A settable public property of a <see cref="KongConfigAttribute"/> class that is not a config field.</summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KongIgnoreAttribute : Attribute;
