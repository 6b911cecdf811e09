using System.Buffers;
using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using Kong.PluginServer.Generators;
using Kong.PluginServer.Plugins;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Kong.PluginServer.Tests.Plugins;

/// <summary>Every shape the generator supports, declared once.</summary>
[KongConfig]
public sealed partial class ShapesConfig
{
    [KongField(Default = "x-in", LenMin = 1, Description = "a header")]
    public string Header { get; set; }

    [KongField(Default = "fast", OneOf = ["fast", "slow"])]
    public string Mode { get; set; }

    [KongField(Required = true)]
    public string Name { get; set; } = "";

    public string? Comment { get; set; }

    [KongField(Default = true)]
    public bool Enabled { get; set; }

    [KongField(Default = 60, Min = 0, Max = 600)]
    public int TimeoutSeconds { get; set; }

    [KongField(Default = 5_000_000_000L)]
    public long Budget { get; set; }

    [KongField(Default = 0.5, Min = 0, Max = 1)]
    public double Ratio { get; set; }

    public int? Limit { get; set; }

    [KongField(DefaultJson = """["RS256"]""", LenMin = 1, ElementOneOf = ["RS256", "ES256"])]
    public List<string> Algorithms { get; set; }

    [KongField(ElementLenMin = 1)]
    public string[] Tags { get; set; } = [];

    [KongField(Name = "headers_map", DefaultJson = """{"a":"X-A"}""", KeyLenMin = 1, ValueLenMin = 1)]
    public Dictionary<string, string> Headers { get; set; }

    [KongField(KeyOneOf = ["ref", "sha"], ValueLenMin = 1, ElementLenMin = 1)]
    public Dictionary<string, List<string>> Claims { get; set; } = [];

    public ShapesRecord Inner { get; set; } = new();

    [KongField(Description = "records")]
    public List<ShapesRecord>? Items { get; set; }

    [KongIgnore]
    public string Scratch { get; set; } = "untouched";

    public bool IsSlow => Mode == "slow";
}

[KongRecord]
public sealed partial class ShapesRecord
{
    [KongField(Required = true, LenMin = 1)]
    public string Id { get; set; } = "";

    [KongField(Default = 3)]
    public int Weight { get; set; }
}

public class ConfigGeneratorTests
{
    private static string Dump(IReadOnlyList<SchemaField> fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) SchemaField.WriteList(w, fields);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void KongFields_declare_every_shape_as_the_Schema_factories_do()
    {
        IReadOnlyList<SchemaField> record = [Schema.String("id", required: true, lenMin: 1), Schema.Integer("weight", @default: 3)];
        IReadOnlyList<SchemaField> expected =
        [
            Schema.String("header", @default: "x-in", lenMin: 1, description: "a header"),
            Schema.String("mode", @default: "fast", oneOf: ["fast", "slow"]),
            Schema.String("name", required: true),
            Schema.String("comment"),
            Schema.Boolean("enabled", @default: true),
            Schema.Integer("timeout_seconds", @default: 60, between: (0, 600)),
            Schema.Integer("budget", @default: 5_000_000_000L),
            Schema.Number("ratio", @default: 0.5, between: (0, 1)),
            Schema.Integer("limit"),
            Schema.Array("algorithms", Schema.StringType(oneOf: ["RS256", "ES256"]), defaultJson: """["RS256"]""", lenMin: 1),
            Schema.Array("tags", Schema.StringType(lenMin: 1)),
            Schema.Map("headers_map", Schema.StringType(lenMin: 1), Schema.StringType(lenMin: 1), defaultJson: """{"a":"X-A"}"""),
            Schema.Map("claims", Schema.StringType(oneOf: ["ref", "sha"]), Schema.ArrayType(Schema.StringType(lenMin: 1), lenMin: 1)),
            Schema.Record("inner", record),
            Schema.Array("items", Schema.RecordType(record), description: "records"),
        ];
        Assert.Equal(Dump(expected), Dump(ShapesConfig.KongFields));
        Assert.Same(ShapesConfig.Fields.TimeoutSeconds, ShapesConfig.KongFields[5]);
        Assert.Equal(60, ShapesConfig.Fields.TimeoutSeconds.IntegerDefault);
        Assert.Equal("between 0 and 600", ShapesConfig.Fields.TimeoutSeconds.RangeText);
        Assert.Equal(0.5, ShapesConfig.Fields.Ratio.NumberDefault);
        Assert.Equal(["RS256"], ShapesConfig.Fields.Algorithms.StringListDefault);
        Assert.Equal("headers_map", ShapesConfig.Fields.Headers.Name);
    }

    [Fact]
    public void The_dump_shows_a_number_field_as_Kong_declares_one()
    {
        Assert.Equal("""[{"ratio":{"type":"number","default":0.5,"between":[0,1]}}]""", Dump([ShapesConfig.Fields.Ratio]));
    }

    [Fact]
    public void A_new_config_carries_the_declared_defaults()
    {
        var c = new ShapesConfig();
        Assert.Equal("x-in", c.Header);
        Assert.Equal("fast", c.Mode);
        Assert.True(c.Enabled);
        Assert.Equal(60, c.TimeoutSeconds);
        Assert.Equal(5_000_000_000L, c.Budget);
        Assert.Equal(0.5, c.Ratio);
        Assert.Equal(["RS256"], c.Algorithms);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "X-A" }, c.Headers);
        Assert.Null(c.Limit);
        Assert.Equal(3, new ShapesRecord().Weight);
    }

    [Fact]
    public void ReadKongConfig_reads_the_normalized_config()
    {
        var json = """
            {"name":"n","comment":"c","enabled":false,"timeout_seconds":600,"budget":7,"ratio":1,"limit":4,
             "algorithms":["ES256","RS256"],"tags":{},"headers_map":{"sub":"X-Sub"},"claims":{"ref":["main","dev"]},
             "inner":{"id":"i"},"items":[{"id":"a","weight":1},{"id":"b"}],"unknown":{"deep":[1,2]},"scratch":"no",
             "__seq__":3}
            """u8;
        var c = ShapesConfig.ReadKongConfig(ConfigNormalizer.Normalize(json, ShapesConfig.KongFields));
        Assert.Equal("n", c.Name);
        Assert.Equal("c", c.Comment);
        Assert.Equal("x-in", c.Header);
        Assert.False(c.Enabled);
        Assert.Equal(600, c.TimeoutSeconds);
        Assert.Equal(7, c.Budget);
        Assert.Equal(1.0, c.Ratio);
        Assert.Equal(4, c.Limit);
        Assert.Equal(["ES256", "RS256"], c.Algorithms);
        Assert.Empty(c.Tags);
        Assert.Equal(new Dictionary<string, string> { ["sub"] = "X-Sub" }, c.Headers);
        Assert.Equal(["main", "dev"], c.Claims["ref"]);
        Assert.Equal(("i", 3), (c.Inner.Id, c.Inner.Weight));
        Assert.Equal([("a", 1), ("b", 3)], c.Items!.Select(i => (i.Id, i.Weight)));
        Assert.Equal("untouched", c.Scratch);
        Assert.False(c.IsSlow);
    }

    [Fact]
    public void ReadKongConfig_skips_unknown_keys_and_reads_null_as_the_default()
    {
        var c = ShapesConfig.ReadKongConfig("""{"x":[{"y":null}],"mode":null,"comment":null,"limit":null,"items":null,"name":"n"}"""u8);
        Assert.Equal("fast", c.Mode);
        Assert.Null(c.Comment);
        Assert.Null(c.Limit);
        Assert.Null(c.Items);
        Assert.Equal("n", c.Name);
    }

    [Theory]
    [InlineData("""{"timeout_seconds":"60"}""", "timeout_seconds", "expected an integer (32-bit)")]
    [InlineData("""{"items":[{"id":5}]}""", "items[0].id", "expected a string")]
    [InlineData("""{"claims":{"ref":"main"}}""", "claims.ref", "expected an array")]
    [InlineData("""{"inner":[]}""", "inner", "expected a record (JSON object)")]
    [InlineData("""null""", "", "the config is empty")]
    public void ReadKongConfig_names_the_field_of_a_value_of_the_wrong_type(string json, string field, string reason)
    {
        var e = Assert.Throws<ConfigException>(() => ShapesConfig.ReadKongConfig(Encoding.UTF8.GetBytes(json)));
        Assert.Equal((field, reason), (e.Field, e.Reason));
    }

    [Theory]
    [InlineData("ClockSkewSeconds", "clock_skew_seconds")]
    [InlineData("JwksURI", "jwks_uri")]
    [InlineData("Sha256Sum", "sha256_sum")]
    [InlineData("id", "id")]
    public void Field_names_default_to_snake_case(string property, string name) =>
        Assert.Equal(name, KongConfigGenerator.SnakeCase(property));

    // ---- the generator's diagnostics ----

    private const string Usings = "using System.Collections.Generic; using Kong.PluginServer.Plugins;\n";

    private static (ImmutableArray<Diagnostic> Generator, ImmutableArray<Diagnostic> Compilation) Run(string source)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p) != "Kong.PluginServer.dll")
            .Select(p => MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(KongFieldAttribute).Assembly.Location));
        var parse = new CSharpParseOptions(LanguageVersion.Preview);
        var compilation = CSharpCompilation.Create("Probe", [CSharpSyntaxTree.ParseText(Usings + source, parse)],
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver driver = CSharpGeneratorDriver.Create([new KongConfigGenerator().AsSourceGenerator()], parseOptions: parse);
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return (diagnostics, output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToImmutableArray());
    }

    [Fact]
    public void Generated_code_compiles_without_diagnostics()
    {
        var (generator, compilation) = Run("""
            namespace P;
            [KongConfig] public partial class C
            {
                [KongField(Default = 1, Min = 0, Max = 2)] public int A { get; set; }
                [KongField(DefaultJson = "[]")] public List<List<string>> B { get; set; }
                public Dictionary<string, R> M { get; set; } = [];
                public R[]? Rs { get; set; }
                public double? D { get; set; }
            }
            [KongRecord] public partial class R { public string? X { get; set; } }
            [KongRecord] public partial class Own { public Own() { } [KongField(Default = "d")] public string S { get; set; } = ""; }
            public partial class Outer { [KongConfig] internal sealed partial class Inner { public long N { get; set; } } }
            public static class Use { public static C Read() => C.ReadKongConfig("{}"u8); static IReadOnlyList<SchemaField> F() => C.KongFields; }
            """);
        Assert.Empty(generator);
        Assert.Empty(compilation);
    }

    [Fact]
    public void An_edit_elsewhere_reuses_the_cached_models()
    {
        var parse = new CSharpParseOptions(LanguageVersion.Preview);
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p) != "Kong.PluginServer.dll")
            .Select(p => MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(KongFieldAttribute).Assembly.Location));
        var config = CSharpSyntaxTree.ParseText(Usings + "[KongConfig] public partial class C { [KongField(Default = 1)] public int A { get; set; } }", parse);
        var compilation = CSharpCompilation.Create("Probe", [config], references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        GeneratorDriver driver = CSharpGeneratorDriver.Create([new KongConfigGenerator().AsSourceGenerator()], parseOptions: parse,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        driver = driver.RunGenerators(compilation);
        driver = driver.RunGenerators(compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public class Unrelated { }", parse)));
        var outputs = driver.GetRunResult().Results.Single().TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).ToList();
        Assert.NotEmpty(outputs);
        Assert.All(outputs, o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Theory]
    [InlineData("[KongConfig] public class C { public string? A { get; set; } }", "KONG001")]
    [InlineData("public class Outer { [KongConfig] public partial class C { } }", "KONG001")]
    [InlineData("[KongConfig] public partial class C { public System.DateTime When { get; set; } }", "KONG002")]
    [InlineData("[KongConfig] public partial class C { public Dictionary<int, string> M { get; set; } = []; }", "KONG002")]
    [InlineData("[KongConfig] public partial class C { public object O { get; set; } = 1; }", "KONG002")]
    [InlineData("[KongConfig] public partial class C { [KongField(Default = \"60\")] public int A { get; set; } }", "KONG003")]
    [InlineData("[KongConfig] public partial class C { [KongField(Default = 1.5)] public int A { get; set; } }", "KONG003")]
    [InlineData("[KongConfig] public partial class C { [KongField(Default = 1)] public string A { get; set; } = \"\"; }", "KONG003")]
    [InlineData("[KongConfig] public partial class C { [KongField(Default = \"a\")] public List<string> A { get; set; } = []; }", "KONG003")]
    [InlineData("[KongConfig] public partial class C { [KongField(DefaultJson = \"1\")] public int A { get; set; } }", "KONG003")]
    [InlineData("[KongConfig] public partial class C { [KongField(Min = 10, Max = 1)] public int A { get; set; } }", "KONG004")]
    [InlineData("[KongConfig] public partial class C { [KongField(Min = 1)] public int A { get; set; } }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { [KongField(Min = 0, Max = 1)] public string A { get; set; } = \"\"; }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { [KongField(OneOf = [\"a\"])] public int A { get; set; } }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { [KongField(ElementOneOf = [\"a\"])] public string A { get; set; } = \"\"; }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { [KongField(KeyLenMin = 1)] public List<string> A { get; set; } = []; }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { [KongField(Default = \"a\")] public string? A { get; set; } }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { public string A { get; init; } = \"\"; }", "KONG005")]
    [InlineData("[KongConfig] public partial class C { public int A { get; set; } [KongField(Name = \"a\")] public int B { get; set; } }", "KONG005")]
    public void Declarations_the_generator_cannot_serve_are_errors(string source, string id)
    {
        var (generator, _) = Run(source);
        var d = Assert.Single(generator);
        Assert.Equal((id, DiagnosticSeverity.Error), (d.Id, d.Severity));
        Assert.NotEqual(Location.None, d.Location);
    }
}
