using System.Text.Json;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Tests.Plugins;

public class PluginDumpTests
{
    [Theory]
    [InlineData(PluginDump.ProtoBuf)]
    [InlineData(PluginDump.MsgPack)]
    public void Dump_has_the_shape_Kong_loads(string protocol)
    {
        var info = new PluginInfo("my-auth", "1.2.3", 1010, KongPhase.Access | KongPhase.Log,
            [Schema.String("header", @default: "x"), Schema.Array("keys", Schema.StringType(), required: true, lenMin: 1)]);
        string json = PluginDump.Render(info, protocol);
        Assert.DoesNotContain('\n', json);
        var root = JsonDocument.Parse(json).RootElement;
        Assert.Equal(protocol, root.GetProperty("Protocol").GetString());
        var p = root.GetProperty("Plugins")[0];
        Assert.Equal("my-auth", p.GetProperty("Name").GetString());
        Assert.Equal(1010, p.GetProperty("Priority").GetInt32());
        Assert.Matches(@"^\d+\.\d+\.\d+$", p.GetProperty("Version").GetString());
        Assert.Equal(["access", "log"], p.GetProperty("Phases").EnumerateArray().Select(e => e.GetString()));
        var schema = p.GetProperty("Schema");
        Assert.Equal("my-auth", schema.GetProperty("name").GetString());
        var config = Assert.Single(schema.GetProperty("fields").EnumerateArray(), f => f.TryGetProperty("config", out _)).GetProperty("config");
        Assert.Equal("record", config.GetProperty("type").GetString());
        foreach (var f in config.GetProperty("fields").EnumerateArray())
            Assert.Single(f.EnumerateObject()); // every fields entry is a one-key object
        var keys = config.GetProperty("fields")[1].GetProperty("keys");
        Assert.Equal("array", keys.GetProperty("type").GetString());
        Assert.Equal(1, keys.GetProperty("len_min").GetInt32());
    }

    [Fact]
    public void Entity_fields_and_checks_are_dumped_as_Kong_plugin_schemas_declare_them()
    {
        var info = new PluginInfo("my-auth", "1.0.0", 1000, KongPhase.Access,
            [Schema.String("a"), Schema.String("b"), Schema.String("mode", @default: "x", oneOf: ["x", "y"]), Schema.Boolean("insecure", @default: false)])
        {
            EntityFields = [Schema.NoConsumer(), Schema.ProtocolsHttp()],
            EntityChecks =
            [
                EntityCheck.MutuallyExclusive("config.a", "config.b"),
                EntityCheck.Conditional("config.mode", FieldMatch.Eq("y"), "config.a", FieldMatch.IsRequired, thenErr: "a is needed when %s is y"),
                EntityCheck.Conditional("config.insecure", FieldMatch.Eq(false), "config.b", FieldMatch.StartingWith("https://")),
            ],
        }.Checked();
        var schema = JsonDocument.Parse(PluginDump.SchemaJson(info)).RootElement;

        var fields = schema.GetProperty("fields").EnumerateArray().Select(f => f.EnumerateObject().Single()).ToList();
        Assert.Equal(["consumer", "protocols", "config"], fields.Select(f => f.Name));
        Assert.Equal("""{"type":"foreign","reference":"consumers","eq":null}""", fields[0].Value.GetRawText());
        Assert.Equal("""{"type":"set","required":true,"default":["grpc","grpcs","http","https"],"elements":{"type":"string","one_of":["grpc","grpcs","http","https"]}}""",
            fields[1].Value.GetRawText());
        Assert.Equal("""[{"mutually_exclusive":["config.a","config.b"]},""" +
            """{"conditional":{"if_field":"config.mode","if_match":{"eq":"y"},"then_field":"config.a","then_match":{"required":true},"then_err":"a is needed when %s is y"}},""" +
            """{"conditional":{"if_field":"config.insecure","if_match":{"eq":false},"then_field":"config.b","then_match":{"starts_with":"https://"}}}]""",
            schema.GetProperty("entity_checks").GetRawText());
    }

    [Fact]
    public void A_schema_without_entity_checks_dumps_none()
    {
        var info = new PluginInfo("p", "1.0.0", 1, KongPhase.Access, [Schema.String("a")]);
        var schema = JsonDocument.Parse(PluginDump.SchemaJson(info)).RootElement;
        Assert.False(schema.TryGetProperty("entity_checks", out _));
        Assert.Equal(["config"], schema.GetProperty("fields").EnumerateArray().Select(f => f.EnumerateObject().Single().Name));
    }

    [Theory]
    [InlineData("config.nope")]
    [InlineData("config.a.b")]
    [InlineData("route")]
    public void An_entity_check_on_an_undeclared_field_is_refused_at_declaration(string field)
    {
        var info = new PluginInfo("p", "1.0.0", 1, KongPhase.Access, [Schema.String("a")])
        {
            EntityChecks = [EntityCheck.MutuallyExclusive("config.a", field)],
        };
        var e = Assert.Throws<InvalidOperationException>(() => info.Checked());
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Then_err_with_a_format_Lua_would_raise_on_is_refused()
    {
        Assert.Throws<ArgumentException>(() => EntityCheck.Conditional("config.a", FieldMatch.Eq("x"), "config.b", FieldMatch.IsRequired, thenErr: "%d of %s"));
        Assert.Throws<ArgumentException>(() => EntityCheck.Conditional("config.a", FieldMatch.Eq("x"), "config.b", FieldMatch.IsRequired, thenErr: "%s and %s"));
        _ = EntityCheck.Conditional("config.a", FieldMatch.Eq("x"), "config.b", FieldMatch.IsRequired, thenErr: "100%% needed when %s is x");
    }
}
