using System.Text;
using System.Text.Json;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Tests.Plugins;

public class ConfigNormalizerTests
{
    private static readonly IReadOnlyList<SchemaField> Fields =
    [
        Schema.String("issuer", required: true),
        Schema.Array("audiences", Schema.StringType(), required: true, lenMin: 1),
        Schema.Array("algorithms", Schema.StringType(oneOf: ["RS256", "ES256"]), defaultJson: "[\"RS256\"]"),
        Schema.Integer("skew", @default: 60, between: (0, 3600)),
        Schema.String("mode", @default: "enforce", oneOf: ["enforce", "dry_run"]),
        Schema.Map("headers", Schema.StringType(), Schema.StringType(), defaultJson: "{\"a\":\"b\"}"),
        Schema.Array("rules", Schema.RecordType([Schema.String("name", required: true), Schema.String("effect", @default: "allow")])),
        Schema.Boolean("flag", @default: false),
    ];

    private static JsonElement Run(string json) =>
        JsonDocument.Parse(ConfigNormalizer.Normalize(Encoding.UTF8.GetBytes(json), Fields)).RootElement;

    [Fact]
    public void Drops_injected_and_unknown_keys_and_fills_defaults()
    {
        var c = Run("""{"__seq__":3,"__key__":"plugins:x::::","__plugin_id":"u","__ws_id":"w","route_id":"r","service_id":null,"issuer":"https://g","audiences":["a"],"whatever":1}""");
        Assert.False(c.TryGetProperty("__seq__", out _));
        Assert.False(c.TryGetProperty("route_id", out _));
        Assert.False(c.TryGetProperty("whatever", out _));
        Assert.Equal("RS256", c.GetProperty("algorithms")[0].GetString());
        Assert.Equal(60, c.GetProperty("skew").GetInt32());
        Assert.Equal("b", c.GetProperty("headers").GetProperty("a").GetString());
        Assert.False(c.GetProperty("flag").GetBoolean());
    }

    [Fact]
    public void Accepts_cjson_empty_object_for_arrays_and_null_as_default()
    {
        var c = Run("""{"issuer":"https://g","audiences":["a"],"rules":{},"algorithms":null,"skew":null}""");
        Assert.Equal(JsonValueKind.Array, c.GetProperty("rules").ValueKind);
        Assert.Equal(0, c.GetProperty("rules").GetArrayLength());
        Assert.Equal("RS256", c.GetProperty("algorithms")[0].GetString());
        Assert.Equal(60, c.GetProperty("skew").GetInt32());
    }

    [Fact]
    public void Fills_record_defaults_inside_arrays()
    {
        var c = Run("""{"issuer":"i","audiences":["a"],"rules":[{"name":"r1"}]}""");
        Assert.Equal("allow", c.GetProperty("rules")[0].GetProperty("effect").GetString());
    }

    [Theory]
    [InlineData("""{"audiences":["a"]}""", "issuer")]
    [InlineData("""{"issuer":"i"}""", "audiences")]
    [InlineData("""{"issuer":"i","audiences":[]}""", "audiences")]
    [InlineData("""{"issuer":"i","audiences":{}}""", "audiences")]
    [InlineData("""{"issuer":"i","audiences":["a"],"skew":-1}""", "skew")]
    [InlineData("""{"issuer":"i","audiences":["a"],"skew":1.5}""", "skew")]
    [InlineData("""{"issuer":"i","audiences":["a"],"mode":"yolo"}""", "mode")]
    [InlineData("""{"issuer":"i","audiences":["a"],"algorithms":["HS256"]}""", "algorithms[0]")]
    [InlineData("""{"issuer":"i","audiences":["a"],"rules":[{"effect":"deny"}]}""", "rules[0].name")]
    [InlineData("""{"issuer":5,"audiences":["a"]}""", "issuer")]
    [InlineData("""{"issuer":"i","audiences":["a"],"flag":"yes"}""", "flag")]
    public void Refuses_bad_configs_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<ConfigException>(() => Run(json));
        Assert.Equal(field, e.Field);
        Assert.Contains("config." + field, e.Message);
    }

    [Fact]
    public void Refuses_invalid_json()
    {
        Assert.Throws<ConfigException>(() => Run("{not json"));
    }
}
