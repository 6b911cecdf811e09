using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Kong.PluginServer.Generators;

/// <summary>
/// For each <c>[KongConfig]</c> / <c>[KongRecord]</c> partial class: the schema fields built with Kong.PluginServer's
/// <c>Schema.*</c> factories (<c>KongFields</c>, one <c>Fields.&lt;Property&gt;</c> each), a Utf8JsonReader-based reader
/// of the normalized config JSON (<c>ReadKongRecord</c>, and <c>ReadKongConfig</c> for <c>[KongConfig]</c>), and a
/// parameterless constructor applying the declared defaults when the class declares no constructor.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class KongConfigGenerator : IIncrementalGenerator
{
    internal const string Ns = "Kong.PluginServer.Plugins";
    internal const string ConfigAttribute = Ns + ".KongConfigAttribute";
    internal const string RecordAttribute = Ns + ".KongRecordAttribute";
    internal const string FieldAttribute = Ns + ".KongFieldAttribute";
    internal const string IgnoreAttribute = Ns + ".KongIgnoreAttribute";

    private const string Category = "KongConfig";

    internal static readonly DiagnosticDescriptor NotPartial = new("KONG001", "Config class must be partial",
        "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    internal static readonly DiagnosticDescriptor UnsupportedType = new("KONG002", "Config property type has no Kong schema type",
        "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    internal static readonly DiagnosticDescriptor DefaultMismatch = new("KONG003", "Default does not match the property type",
        "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    internal static readonly DiagnosticDescriptor MinAboveMax = new("KONG004", "Min is greater than Max",
        "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    internal static readonly DiagnosticDescriptor NotApplicable = new("KONG005", "KongField argument does not apply",
        "{0}", Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static DiagnosticDescriptor Descriptor(string id) => id switch
    {
        "KONG001" => NotPartial,
        "KONG002" => UnsupportedType,
        "KONG003" => DefaultMismatch,
        "KONG004" => MinAboveMax,
        _ => NotApplicable,
    };

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var configs = context.SyntaxProvider.ForAttributeWithMetadataName(ConfigAttribute,
            static (node, _) => node is ClassDeclarationSyntax,
            static (ctx, ct) => Analyze(ctx, isConfig: true, ct));
        var records = context.SyntaxProvider.ForAttributeWithMetadataName(RecordAttribute,
            static (node, _) => node is ClassDeclarationSyntax,
            static (ctx, ct) => Analyze(ctx, isConfig: false, ct));
        context.RegisterSourceOutput(configs, static (spc, model) => Produce(spc, model));
        context.RegisterSourceOutput(records, static (spc, model) => Produce(spc, model));
    }

    private static void Produce(SourceProductionContext spc, ClassModel model)
    {
        foreach (var d in model.Diagnostics)
            spc.ReportDiagnostic(Diagnostic.Create(Descriptor(d.Id), d.Location?.ToLocation(), d.Message));
        if (model.Diagnostics.Count > 0) return;
        string hint = (model.Namespace is null ? "" : model.Namespace + ".") + string.Join(".", model.ContainingTypes.Select(c => c.Split(' ').Last()))
                      + (model.ContainingTypes.Count > 0 ? "." : "") + model.Name + ".KongConfig.g.cs";
        spc.AddSource(hint, Emitter.Emit(model));
    }

    // ---- analysis: symbols -> an equatable model ----

    private static ClassModel Analyze(GeneratorAttributeSyntaxContext ctx, bool isConfig, CancellationToken ct)
    {
        var type = (INamedTypeSymbol)ctx.TargetSymbol;
        var decl = (ClassDeclarationSyntax)ctx.TargetNode;
        var diagnostics = new List<DiagnosticInfo>();
        string attr = isConfig ? "[KongConfig]" : "[KongRecord]";

        if (!decl.Modifiers.Any(SyntaxKind.PartialKeyword))
            diagnostics.Add(new("KONG001", $"{attr} class '{type.Name}' must be declared partial", LocationInfo.From(decl.Identifier.GetLocation())));
        if (type.IsGenericType)
            diagnostics.Add(new("KONG001", $"{attr} class '{type.Name}' cannot be generic", LocationInfo.From(decl.Identifier.GetLocation())));

        var containing = new List<string>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            bool partial = outer.DeclaringSyntaxReferences.Any(r => r.GetSyntax(ct) is TypeDeclarationSyntax t && t.Modifiers.Any(SyntaxKind.PartialKeyword));
            if (!partial)
                diagnostics.Add(new("KONG001", $"'{outer.Name}', which contains {attr} class '{type.Name}', must be declared partial", LocationInfo.From(decl.Identifier.GetLocation())));
            string kind = outer.IsRecord ? (outer.IsValueType ? "record struct" : "record") : outer.IsValueType ? "struct" : outer.TypeKind == TypeKind.Interface ? "interface" : "class";
            containing.Insert(0, $"partial {kind} {outer.Name}");
        }

        var fields = new List<FieldModel>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in type.GetMembers())
        {
            ct.ThrowIfCancellationRequested();
            if (member is not IPropertySymbol p || p.IsStatic || p.IsIndexer || p.DeclaredAccessibility != Accessibility.Public) continue;
            if (p.IsImplicitlyDeclared) continue;
            if (p.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == IgnoreAttribute)) continue;
            var fieldAttr = p.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == FieldAttribute);
            if (p.SetMethod is null)
            {
                // a computed property (DryRun => Mode == "dry_run") is not a field; a declared one must be settable
                if (fieldAttr is not null)
                    diagnostics.Add(new("KONG005", $"'{p.Name}' has no set accessor; a [KongField] property must be settable", Loc(p)));
                continue;
            }
            if (p.SetMethod.IsInitOnly || p.SetMethod.DeclaredAccessibility != Accessibility.Public)
            {
                diagnostics.Add(new("KONG005", $"'{p.Name}' needs a public set accessor (not init) to be a config field; mark it [KongIgnore] otherwise", Loc(p)));
                continue;
            }
            var field = AnalyzeField(p, fieldAttr, diagnostics);
            if (field is null) continue;
            if (!names.Add(field.KongName))
                diagnostics.Add(new("KONG005", $"'{p.Name}': the field name '{field.KongName}' is already used", Loc(p)));
            fields.Add(field);
        }

        bool declaresCtor = type.InstanceConstructors.Any(c => !c.IsImplicitlyDeclared);
        return new ClassModel(
            type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString(),
            type.Name,
            type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            EquatableArray.From(containing),
            isConfig,
            declaresCtor,
            EquatableArray.From(fields),
            EquatableArray.From(diagnostics));
    }

    private static LocationInfo? Loc(ISymbol s) => LocationInfo.From(s.Locations.FirstOrDefault());

    private static FieldModel? AnalyzeField(IPropertySymbol p, AttributeData? attr, List<DiagnosticInfo> diagnostics)
    {
        var loc = LocationInfo.From(attr?.ApplicationSyntaxReference?.GetSyntax().GetLocation()) ?? Loc(p);
        var shape = ShapeOf(p.Type);
        if (shape is null)
        {
            diagnostics.Add(new("KONG002", $"'{p.Name}' is a {p.Type.ToDisplayString()}, which a Kong config cannot hold " +
                "(string, bool, int, long, double, List<T>, T[], Dictionary<string, T>, or a [KongConfig]/[KongRecord] class)", Loc(p)));
            return null;
        }
        bool nullable = shape.NullableValue || (p.Type.IsReferenceType && p.NullableAnnotation == NullableAnnotation.Annotated);

        var args = attr?.NamedArguments.ToDictionary(a => a.Key, a => a.Value) ?? new Dictionary<string, TypedConstant>();
        string? Str(string key) => args.TryGetValue(key, out var v) && !v.IsNull ? v.Value as string : null;
        int? Int(string key) => args.TryGetValue(key, out var v) && v.Value is int i ? i : null;
        double? Dbl(string key) => args.TryGetValue(key, out var v) && v.Value is double d ? d : null;
        EquatableArray<string>? Strs(string key) => args.TryGetValue(key, out var v) && v.Kind == TypedConstantKind.Array && !v.IsNull
            ? EquatableArray.From(v.Values.Select(x => x.Value as string ?? "")) : null;
        void NotFor(string arg, string what) => diagnostics.Add(new("KONG005", $"'{p.Name}': {arg} does not apply to {what}", loc));

        string kongName = Str("Name") ?? SnakeCase(p.Name);
        bool required = args.TryGetValue("Required", out var r) && r.Value is true;
        string? description = Str("Description");
        string? defaultJson = Str("DefaultJson");
        double? min = Dbl("Min"), max = Dbl("Max");
        var oneOf = Strs("OneOf");
        int? lenMin = Int("LenMin");
        var elementOneOf = Strs("ElementOneOf");
        int? elementLenMin = Int("ElementLenMin");
        var keyOneOf = Strs("KeyOneOf");
        int? keyLenMin = Int("KeyLenMin");
        var valueOneOf = Strs("ValueOneOf");
        int? valueLenMin = Int("ValueLenMin");
        string what = $"a {shape.KongType} field";

        // Default: a constant of the property's own kind
        string? defaultLiteral = null;
        if (args.TryGetValue("Default", out var def) && !def.IsNull)
        {
            if (!shape.IsScalar)
                diagnostics.Add(new("KONG003", $"'{p.Name}': Default is for string, boolean, integer and number fields; give a {shape.KongType} field DefaultJson", loc));
            else if (DefaultLiteral(shape.Kind, def.Value) is { } lit) defaultLiteral = lit;
            else
                diagnostics.Add(new("KONG003", $"'{p.Name}': Default is a {def.Type?.ToDisplayString() ?? "null"}, which does not fit the {p.Type.ToDisplayString()} property", loc));
        }
        if (defaultJson is not null && (shape.IsScalar || shape.Kind == ShapeKind.Record))
            diagnostics.Add(new("KONG003", $"'{p.Name}': DefaultJson is for array and map fields; use Default for {what}", loc));
        if (defaultJson is not null && defaultLiteral is not null)
            diagnostics.Add(new("KONG003", $"'{p.Name}': give Default or DefaultJson, not both", loc));
        if (nullable && (defaultLiteral is not null || defaultJson is not null || required))
            diagnostics.Add(new("KONG005", $"'{p.Name}' is nullable: an optional field without a default (make the property non-nullable to give it a default or make it required)", loc));

        bool numeric = shape.Kind is ShapeKind.Int32 or ShapeKind.Int64 or ShapeKind.Double;
        if (min is not null || max is not null)
        {
            if (!numeric) NotFor("Min/Max", what);
            else if (min is null || max is null) diagnostics.Add(new("KONG005", $"'{p.Name}': give both Min and Max (Kong's between)", loc));
            else if (min > max) diagnostics.Add(new("KONG004", $"'{p.Name}': Min ({Num(min.Value)}) is greater than Max ({Num(max.Value)})", loc));
        }
        if (oneOf is not null && shape.Kind != ShapeKind.String) NotFor("OneOf", what);
        if (lenMin is not null && !(shape.Kind == ShapeKind.String || shape.IsCollection)) NotFor("LenMin", what);

        // where the element, key and value rules land: the strings of an array (of arrays), of a map's arrays
        var mapValue = shape.Kind == ShapeKind.Map ? shape.Element : null;
        var arrayElement = shape.IsCollection ? Innermost(shape) : mapValue is not null && mapValue.IsCollection ? Innermost(mapValue) : null;
        if ((elementOneOf is not null || elementLenMin is not null) && arrayElement?.Kind != ShapeKind.String)
            NotFor("ElementOneOf/ElementLenMin", shape.Kind == ShapeKind.Map ? "a map whose values are not arrays of strings" : what + (shape.IsCollection ? " whose elements are not strings" : ""));
        if ((keyOneOf is not null || keyLenMin is not null) && shape.Kind != ShapeKind.Map) NotFor("KeyOneOf/KeyLenMin", what);
        if (valueOneOf is not null && mapValue?.Kind != ShapeKind.String) NotFor("ValueOneOf", shape.Kind == ShapeKind.Map ? "a map whose values are not strings" : what);
        if (valueLenMin is not null && !(mapValue is not null && (mapValue.Kind == ShapeKind.String || mapValue.IsCollection)))
            NotFor("ValueLenMin", shape.Kind == ShapeKind.Map ? "a map whose values are not strings or arrays" : what);
        if (lenMin < 0 || elementLenMin < 0 || keyLenMin < 0 || valueLenMin < 0)
            diagnostics.Add(new("KONG005", $"'{p.Name}': a length minimum cannot be negative", loc));

        return new FieldModel(p.Name, kongName, shape, nullable, defaultLiteral, defaultJson, min, max, oneOf, lenMin,
            elementOneOf, elementLenMin, keyOneOf, keyLenMin, valueOneOf, valueLenMin, required, description);
    }

    private static Shape Innermost(Shape s) => s.IsCollection && s.Element is not null ? Innermost(s.Element) : s;

    private static Shape? ShapeOf(ITypeSymbol type)
    {
        string name = type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nv)
        {
            var inner = ShapeOf(nv.TypeArguments[0]);
            return inner is { IsScalar: true } && inner.Kind != ShapeKind.String ? inner with { NullableValue = true } : null;
        }
        switch (type.SpecialType)
        {
            case SpecialType.System_String: return new Shape(ShapeKind.String, "string", null, false);
            case SpecialType.System_Boolean: return new Shape(ShapeKind.Boolean, "bool", null, false);
            case SpecialType.System_Int32: return new Shape(ShapeKind.Int32, "int", null, false);
            case SpecialType.System_Int64: return new Shape(ShapeKind.Int64, "long", null, false);
            case SpecialType.System_Double: return new Shape(ShapeKind.Double, "double", null, false);
        }
        if (type is IArrayTypeSymbol { Rank: 1 } array)
            return ShapeOf(array.ElementType) is { NullableValue: false } e ? new Shape(ShapeKind.Array, e.TypeName + "[]", e, false) : null;
        if (type is not INamedTypeSymbol named) return null;
        string definition = named.OriginalDefinition.ToDisplayString();
        if (definition == "System.Collections.Generic.List<T>")
            return ShapeOf(named.TypeArguments[0]) is { NullableValue: false } e ? new Shape(ShapeKind.List, $"global::System.Collections.Generic.List<{e.TypeName}>", e, false) : null;
        if (definition == "System.Collections.Generic.Dictionary<TKey, TValue>" && named.TypeArguments[0].SpecialType == SpecialType.System_String)
            return ShapeOf(named.TypeArguments[1]) is { NullableValue: false } v ? new Shape(ShapeKind.Map, $"global::System.Collections.Generic.Dictionary<string, {v.TypeName}>", v, false) : null;
        if (named.TypeKind == TypeKind.Class && named.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() is ConfigAttribute or RecordAttribute))
            return new Shape(ShapeKind.Record, name, null, false);
        return null;
    }

    private static string? DefaultLiteral(ShapeKind kind, object? value) => (kind, value) switch
    {
        (ShapeKind.String, string s) => SymbolDisplay.FormatLiteral(s, quote: true),
        (ShapeKind.Boolean, bool b) => b ? "true" : "false",
        (ShapeKind.Int32, int i) => i.ToString(CultureInfo.InvariantCulture),
        (ShapeKind.Int32, long l) when l is >= int.MinValue and <= int.MaxValue => l.ToString(CultureInfo.InvariantCulture),
        (ShapeKind.Int64, int i) => i.ToString(CultureInfo.InvariantCulture) + "L",
        (ShapeKind.Int64, long l) => l.ToString(CultureInfo.InvariantCulture) + "L",
        (ShapeKind.Double, int i) => i.ToString(CultureInfo.InvariantCulture) + "d",
        (ShapeKind.Double, long l) => l.ToString(CultureInfo.InvariantCulture) + "d",
        (ShapeKind.Double, double d) when !double.IsNaN(d) && !double.IsInfinity(d) => Num(d) + "d",
        _ => null,
    };

    internal static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>ClockSkewSeconds → clock_skew_seconds, JwksURI → jwks_uri, Sha256Sum → sha256_sum.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                bool afterLowerOrDigit = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                bool endsAcronym = i > 0 && char.IsUpper(name[i - 1]) && i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (afterLowerOrDigit || endsAcronym) sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
