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

    private static readonly IReadOnlyList<EntityCheck> Checks =
    [
        EntityCheck.MutuallyExclusive("config.issuer", "config.mode_override"),
        EntityCheck.Conditional("config.mode", FieldMatch.Eq("dry_run"), "config.reason", FieldMatch.IsRequired),
        EntityCheck.Conditional("config.flag", FieldMatch.Eq(false), "config.issuer", FieldMatch.StartingWith("https://"), thenErr: "set %s for http"),
        EntityCheck.AtLeastOneOf("config.reason", "config.mode_override", "config.issuer"),
    ];

    private static readonly IReadOnlyList<SchemaField> CheckedFields =
        [.. Fields, Schema.String("reason"), Schema.String("mode_override")];

    [Theory]
    [InlineData("""{"issuer":"https://g","audiences":["a"]}""", null, null)]
    [InlineData("""{"issuer":"https://g","audiences":["a"],"mode_override":"x"}""", "mode_override", "only one or none of these fields must be set: 'config.issuer', 'config.mode_override'")]
    [InlineData("""{"issuer":"https://g","audiences":["a"],"mode_override":""}""", null, null)]
    [InlineData("""{"issuer":"https://g","audiences":["a"],"mode":"dry_run"}""", "reason", "required field missing (failed conditional validation given value of field 'config.mode')")]
    [InlineData("""{"issuer":"https://g","audiences":["a"],"mode":"dry_run","reason":"r"}""", null, null)]
    [InlineData("""{"issuer":"http://g","audiences":["a"]}""", "issuer", "should start with: https:// (set config.flag for http)")]
    [InlineData("""{"issuer":"http://g","audiences":["a"],"flag":true}""", null, null)]
    public void Entity_checks_over_config_fields_are_enforced_with_Kongs_semantics(string json, string? field, string? message)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        if (field is null)
        {
            _ = ConfigNormalizer.Normalize(bytes, CheckedFields, Checks);
            return;
        }
        var e = Assert.Throws<ConfigException>(() => ConfigNormalizer.Normalize(bytes, CheckedFields, Checks));
        Assert.Equal(field, e.Field);
        Assert.Equal(message, e.Reason);
    }

    [Fact]
    public void Checks_on_fields_outside_config_are_left_to_Kong()
    {
        var checks = new[] { EntityCheck.AtLeastOneOf("protocols", "config.reason") };
        _ = ConfigNormalizer.Normalize(Encoding.UTF8.GetBytes("""{"issuer":"https://g","audiences":["a"]}"""), CheckedFields, checks);
    }

    [Fact]
    public void Check_lists_every_problem_and_skips_entity_checks_over_broken_fields()
    {
        var problems = ConfigNormalizer.Check(Encoding.UTF8.GetBytes("""
            {"audiences":[],"skew":-1,"mode":"loud","algorithms":["RS256","HS256"],"rules":[{"effect":"deny"}],"flag":"yes","mode_override":"m","issuer":5}
            """), CheckedFields, Checks, out var canonical);

        Assert.Null(canonical);
        Assert.Equal(
            ["issuer: expected a string", "audiences: length must be at least 1", "algorithms[1]: expected one of: RS256, ES256",
             "skew: value should be between 0 and 3600", "mode: expected one of: enforce, dry_run", "rules[0].name: required field missing",
             "flag: expected a boolean"],
            problems.Select(p => $"{p.Field}: {p.Reason}"));
    }

    [Fact]
    public void Check_of_a_valid_config_gives_the_canonical_form()
    {
        var json = Encoding.UTF8.GetBytes("""{"issuer":"https://g","audiences":["a"],"__seq__":1}""");
        Assert.Empty(ConfigNormalizer.Check(json, CheckedFields, Checks, out var canonical));
        Assert.Equal(ConfigNormalizer.Normalize(json, CheckedFields, Checks), canonical);
    }
}

public class ConfigNormalizerMapKeyTests
{
    private static readonly IReadOnlyList<SchemaField> Fields =
    [
        Schema.Map("keys", Schema.StringType(lenMin: 4), Schema.StringType(lenMin: 1), defaultJson: "{}"),
    ];

    [Fact]
    public void A_map_key_shorter_than_its_len_min_is_refused_naming_the_field_and_the_key()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigNormalizer.Normalize(Encoding.UTF8.GetBytes("""{"keys":{"abc":"x"}}"""), Fields));
        Assert.Equal("keys", e.Field);
        Assert.Contains("'abc'", e.Message);
        var ok = JsonDocument.Parse(ConfigNormalizer.Normalize(Encoding.UTF8.GetBytes("""{"keys":{"abcd":"x"}}"""), Fields)).RootElement;
        Assert.Equal("x", ok.GetProperty("keys").GetProperty("abcd").GetString());
    }
}
