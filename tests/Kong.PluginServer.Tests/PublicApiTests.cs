using System.Reflection;
using System.Text;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests;

/// <summary>
/// The public API of the library and of its simulator, listed from their metadata into docs/api/*.txt (one line per
/// type and per public or protected member, sorted). A change to the API changes the listing: this fails until the
/// listing is regenerated with <c>UPDATE_API=1</c> and checked in, so every API change shows in review.
/// </summary>
public class PublicApiTests
{
    public static readonly TheoryData<string> Assemblies = ["Kong.PluginServer", "Kong.PluginServer.Testing"];

    private static Assembly Load(string name) => name switch
    {
        "Kong.PluginServer" => typeof(KongPluginServer).Assembly,
        _ => typeof(KongSimulator).Assembly,
    };

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void The_listing_matches_the_assembly(string name)
    {
        string path = Path.Combine(RepoRoot(), "docs", "api", name + ".txt");
        string expected = ApiListing.Of(Load(name));
        string actual = File.Exists(path) ? File.ReadAllText(path) : "";
        if (actual != expected && Environment.GetEnvironmentVariable("UPDATE_API") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, expected);
            return;
        }
        Assert.True(actual == expected,
            $"docs/api/{name}.txt differs from the assembly's public API; run the tests with UPDATE_API=1 and review the diff.\n" +
            FirstDifference(expected, actual));
    }

    [Fact]
    public void No_wire_internals_are_public()
    {
        string listing = ApiListing.Of(typeof(KongPluginServer).Assembly);
        foreach (var ns in new[] { "Kong.PluginServer.Framing", "Kong.PluginServer.Protocol", "Kong.PluginServer.Io" })
            Assert.DoesNotContain(ns + ".", listing);
        foreach (var type in new[] { "PdkSession", "PdkCodec", "PdkArgs", "PdkMethod", "PdkReplySink", "InstanceRegistry", "PluginInstance", "OutputBuffer", "InputBuffer", "RpcCall", "RpcReturn" })
            Assert.DoesNotContain("." + type + " ", listing);
    }

    [Fact]
    public void The_listing_sees_a_public_member()
    {
        // the lister itself: a listing without a known member would pass the comparison for the wrong reason
        string listing = ApiListing.Of(typeof(KongPluginServer).Assembly);
        Assert.Contains("Kong.PluginServer.Pdk.PdkLog: method NoticeAsync(string message) -> System.Threading.Tasks.ValueTask", listing);
        Assert.Contains("Kong.PluginServer.Server.KongPluginServer: type public sealed class", listing);
    }

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        var onlyExpected = e.Except(a).Take(10).Select(l => "+ " + l);
        var onlyActual = a.Except(e).Take(10).Select(l => "- " + l);
        return string.Join("\n", onlyExpected.Concat(onlyActual));
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Plugin.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Plugin.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>One line per exported type and per public or protected member, as "Type: kind signature", sorted ordinally.</summary>
internal static class ApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static string Of(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            string owner = Name(type);
            lines.Add($"{owner}: type {Declaration(type)}");
            if (type.IsEnum)
            {
                foreach (var f in type.GetFields(BindingFlags.Public | BindingFlags.Static))
                    lines.Add($"{owner}: value {f.Name} = {Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)}");
                continue;
            }
            if (typeof(Delegate).IsAssignableFrom(type.BaseType)) continue;
            foreach (var m in type.GetMembers(Declared))
            {
                if (!Visible(m) || m.Name.Contains('<')) continue;
                string? line = m switch
                {
                    ConstructorInfo c => $"ctor {Access(c)}({Parameters(c)})",
                    MethodInfo mi when !mi.IsSpecialName || mi.Name.StartsWith("op_", StringComparison.Ordinal) =>
                        $"method {Modifiers(mi)}{mi.Name}{GenericArgs(mi)}({Parameters(mi)}) -> {Name(mi.ReturnType)}",
                    PropertyInfo p => $"property {Accessors(p)} {(p.GetIndexParameters() is { Length: > 0 } ix ? $"this[{string.Join(", ", ix.Select(Parameter))}]" : p.Name)}: {Name(p.PropertyType)}",
                    FieldInfo f => $"field {(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}{f.Name}: {Name(f.FieldType)}",
                    EventInfo e => $"event {e.Name}: {Name(e.EventHandlerType!)}",
                    _ => null,
                };
                if (line is not null) lines.Add($"{owner}: {line}");
            }
        }
        lines.Sort(StringComparer.Ordinal);
        return string.Join("\n", lines) + "\n";
    }

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase b => b.IsPublic || b.IsFamily || b.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => (p.GetMethod is { } g && Visible(g)) || (p.SetMethod is { } s && Visible(s)),
        EventInfo e => e.AddMethod is { } a && Visible(a),
        _ => false, // nested types are listed on their own
    };

    private static string Access(MethodBase m) => m.IsPublic ? "public" : "protected";

    private static string Modifiers(MethodInfo m)
    {
        var sb = new StringBuilder();
        if (!m.IsPublic) sb.Append("protected ");
        if (m.IsStatic) sb.Append("static ");
        else if (m.IsAbstract) sb.Append("abstract ");
        else if (m.IsVirtual && !m.IsFinal && m.GetBaseDefinition() == m) sb.Append("virtual ");
        else if (m.IsVirtual && m.GetBaseDefinition() != m) sb.Append("override ");
        return sb.ToString();
    }

    private static string Accessors(PropertyInfo p)
    {
        var parts = new List<string>();
        if (p.GetMethod is { } g && Visible(g)) parts.Add((g.IsStatic ? "static " : "") + (g.IsPublic ? "get" : "protected get"));
        if (p.SetMethod is { } s && Visible(s))
        {
            bool init = s.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.FullName == "System.Runtime.CompilerServices.IsExternalInit");
            parts.Add((s.IsPublic ? "" : "protected ") + (init ? "init" : "set"));
        }
        return "{ " + string.Join("; ", parts) + " }";
    }

    private static string Declaration(Type t)
    {
        string access = t.IsNestedFamily || t.IsNestedFamORAssem ? "protected" : "public";
        string kind = t.IsEnum ? (t.GetCustomAttribute<FlagsAttribute>() is null ? "enum" : "[Flags] enum")
            : t.IsInterface ? "interface"
            : t.IsValueType ? (t.IsByRefLike ? "ref struct" : "struct")
            : typeof(Delegate).IsAssignableFrom(t.BaseType) ? "delegate " + Name(t.GetMethod("Invoke")!.ReturnType) + "(" + Parameters(t.GetMethod("Invoke")!) + ")"
            : t.IsAbstract && t.IsSealed ? "static class"
            : t.IsAbstract ? "abstract class"
            : t.IsSealed ? "sealed class"
            : "class";
        if (t.IsValueType && !t.IsEnum && t.GetCustomAttributes().Any(a => a.GetType().Name == "IsReadOnlyAttribute")) kind = "readonly " + kind;
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && !typeof(Delegate).IsAssignableFrom(t.BaseType))
            bases.Add(Name(b));
        bases.AddRange(t.GetInterfaces().Where(i => i.IsPublic || i.IsNestedPublic).Select(Name).Order(StringComparer.Ordinal));
        return $"{access} {kind}{(bases.Count > 0 ? " : " + string.Join(", ", bases) : "")}";
    }

    private static string GenericArgs(MethodInfo m) =>
        m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(Parameter));

    private static string Parameter(ParameterInfo p)
    {
        var type = p.ParameterType;
        string prefix = "";
        if (type.IsByRef)
        {
            type = type.GetElementType()!;
            prefix = p.IsOut ? "out " : p.IsIn ? "in " : "ref ";
        }
        if (p.GetCustomAttribute<ParamArrayAttribute>() is not null) prefix += "params ";
        string text = $"{prefix}{Name(type)} {p.Name}";
        if (p.HasDefaultValue) text += " = " + (p.DefaultValue switch { null => "null", string s => $"\"{s}\"", bool b => b ? "true" : "false", var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) });
        return text;
    }

    private static readonly Dictionary<Type, string> Keywords = new()
    {
        [typeof(void)] = "void", [typeof(object)] = "object", [typeof(string)] = "string", [typeof(bool)] = "bool",
        [typeof(byte)] = "byte", [typeof(sbyte)] = "sbyte", [typeof(short)] = "short", [typeof(ushort)] = "ushort",
        [typeof(int)] = "int", [typeof(uint)] = "uint", [typeof(long)] = "long", [typeof(ulong)] = "ulong",
        [typeof(float)] = "float", [typeof(double)] = "double", [typeof(decimal)] = "decimal", [typeof(char)] = "char",
    };

    /// <summary>C#-like type names: keywords, namespaces, generic arguments, nullable value types, arrays.</summary>
    public static string Name(Type t)
    {
        if (Keywords.TryGetValue(t, out var k)) return k;
        if (t.IsGenericParameter) return t.Name;
        if (t.IsArray) return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsByRef || t.IsPointer) return Name(t.GetElementType()!) + (t.IsPointer ? "*" : "&");
        if (Nullable.GetUnderlyingType(t) is { } u) return Name(u) + "?";
        string name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : (t.Namespace is { Length: > 0 } ns ? ns + "." : "") + t.Name;
        if (!t.IsGenericType) return name;
        int tick = name.IndexOf('`');
        if (tick >= 0) name = name[..tick];
        var args = t.GetGenericArguments();
        if (t.IsNested) args = args.Skip(t.DeclaringType!.GetGenericArguments().Length).ToArray();
        return args.Length == 0 ? name : name + "<" + string.Join(", ", args.Select(Name)) + ">";
    }
}
