using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Kong.PluginServer.Generators;

/// <summary>An immutable array compared by its elements, so the incremental pipeline can cache models.</summary>
internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IEnumerable<T> where T : IEquatable<T>
{
    private readonly ImmutableArray<T> _items;

    public EquatableArray(ImmutableArray<T> items) => _items = items;

    public ImmutableArray<T> Items => _items.IsDefault ? ImmutableArray<T>.Empty : _items;
    public int Count => Items.Length;

    public bool Equals(EquatableArray<T> other) => Items.SequenceEqual(other.Items);
    public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

    public override int GetHashCode()
    {
        int h = 17;
        foreach (var item in Items) h = unchecked(h * 31 + (item?.GetHashCode() ?? 0));
        return h;
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

internal static class EquatableArray
{
    public static EquatableArray<T> From<T>(IEnumerable<T> items) where T : IEquatable<T> => new(items.ToImmutableArray());
}

/// <summary>Where a diagnostic points, without holding a syntax tree.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo? From(Location? location) =>
        location is null || location.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
}

internal sealed record DiagnosticInfo(string Id, string Message, LocationInfo? Location);

internal enum ShapeKind { String, Boolean, Int32, Int64, Double, List, Array, Map, Record }

/// <summary>A property's type as the schema sees it: a scalar, a collection of shapes, or a record class.</summary>
internal sealed record Shape(ShapeKind Kind, string TypeName, Shape? Element, bool NullableValue)
{
    public bool IsScalar => Kind is ShapeKind.String or ShapeKind.Boolean or ShapeKind.Int32 or ShapeKind.Int64 or ShapeKind.Double;
    public bool IsCollection => Kind is ShapeKind.List or ShapeKind.Array;

    public string KongType => Kind switch
    {
        ShapeKind.String => "string",
        ShapeKind.Boolean => "boolean",
        ShapeKind.Int32 or ShapeKind.Int64 => "integer",
        ShapeKind.Double => "number",
        ShapeKind.List or ShapeKind.Array => "array",
        ShapeKind.Map => "map",
        _ => "record",
    };
}

/// <summary>One config field: a property and its [KongField] arguments.</summary>
internal sealed record FieldModel(
    string Property,
    string KongName,
    Shape Shape,
    bool Nullable,
    string? DefaultLiteral,
    string? DefaultJson,
    double? Min,
    double? Max,
    EquatableArray<string>? OneOf,
    int? LenMin,
    EquatableArray<string>? ElementOneOf,
    int? ElementLenMin,
    EquatableArray<string>? KeyOneOf,
    int? KeyLenMin,
    EquatableArray<string>? ValueOneOf,
    int? ValueLenMin,
    bool Required,
    string? Description);

/// <summary>One [KongConfig] or [KongRecord] class: what the generator emits for it, or why it cannot.</summary>
internal sealed record ClassModel(
    string? Namespace,
    string Name,
    string FullName,
    EquatableArray<string> ContainingTypes,
    bool IsConfig,
    bool DeclaresConstructor,
    EquatableArray<FieldModel> Fields,
    EquatableArray<DiagnosticInfo> Diagnostics);
