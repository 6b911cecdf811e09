using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Tokens;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>
/// Each field's range and default is declared once, in the schema: the dump Kong enforces, the server's config
/// check and the token options' own validation must agree on every bounded field, at every edge.
/// </summary>
public sealed class SchemaRangeTests
{
    private static readonly GitLabCiAuthPlugin Plugin = new(new JwksKeyStore());

    /// <summary>The config record of the schema as `-dump` prints it.</summary>
    private static JsonObject DumpedConfig()
    {
        var schema = JsonNode.Parse(PluginDump.SchemaJson(Plugin.Info))!.AsObject();
        return schema["fields"]!.AsArray().Select(f => f!.AsObject()).Single(f => f.ContainsKey("config"))["config"]!.AsObject();
    }

    public static TheoryData<string> BoundedFields()
    {
        var data = new TheoryData<string>();
        foreach (var name in KongSchemaNames(DumpedConfig()).Where(n => KongSchemaField(n)["between"] is not null)) data.Add(name);
        return data;
    }

    private static IEnumerable<string> KongSchemaNames(JsonObject record) => record["fields"]!.AsArray().Select(f => f!.AsObject().Single().Key);

    private static JsonObject KongSchemaField(string name) =>
        DumpedConfig()["fields"]!.AsArray().Select(f => f!.AsObject().Single()).Single(kv => kv.Key == name).Value!.AsObject();

    /// <summary>The TokenValidationOptions property a snake_case field maps to (max_token_age_seconds → MaxTokenAgeSeconds).</summary>
    private static PropertyInfo OptionsProperty(string field)
    {
        string pascal = string.Concat(field.Split('_').Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
        return typeof(TokenValidationOptions).GetProperty(pascal)
            ?? throw new InvalidOperationException($"{field} has a range in the dump but no TokenValidationOptions.{pascal} validates it");
    }

    private static TokenValidationOptions Options(string field, long value)
    {
        var o = new TokenValidationOptions { Issuer = "https://gitlab.example.com", Audiences = ["https://api.example.com"] };
        // the one cross-field rule between bounded fields: the stale window is at least the refresh period
        if (field == "jwks_stale_seconds") o.JwksRefreshSeconds = (int)GitLabCiAuthConfig.Fields.JwksRefreshSeconds.Type.Between!.Value.Min;
        OptionsProperty(field).SetValue(o, checked((int)value));
        return o;
    }

    private static byte[] Config(string field, long value)
    {
        var c = new JsonObject
        {
            ["issuer"] = "https://gitlab.example.com",
            ["audiences"] = new JsonArray("https://api.example.com"),
            ["rules"] = new JsonArray(new JsonObject { ["name"] = "any", ["claims"] = new JsonObject { ["project_id"] = new JsonArray("*") } }),
            [field] = value,
        };
        if (field == "jwks_stale_seconds") c["jwks_refresh_seconds"] = (long)GitLabCiAuthConfig.Fields.JwksRefreshSeconds.Type.Between!.Value.Min;
        return Encoding.UTF8.GetBytes(c.ToJsonString());
    }

    [Theory]
    [MemberData(nameof(BoundedFields))]
    public void Validator_and_dump_agree_at_both_edges(string field)
    {
        var between = KongSchemaField(field)["between"]!.AsArray();
        long min = (long)between[0]!.GetValue<double>(), max = (long)between[1]!.GetValue<double>();
        Assert.True(min <= max);

        foreach (var (value, inRange) in new[] { (min - 1, false), (min, true), (max, true), (max + 1, false) })
        {
            // the token options' own validation (what GitLabTokenValidator runs)
            bool optionsOk = Options(field, value).TryValidate(out var error);
            Assert.True(optionsOk == inRange, $"{field}={value}: the dump says {(inRange ? "valid" : "invalid")} ({min}..{max}), TokenValidationOptions says {error ?? "valid"}");
            if (!inRange) Assert.Equal($"{field}: must be between {min} and {max}", error);

            // the server's config check at instance start (schema, entity checks, plugin validation)
            var problems = Plugin.Lint(Config(field, value));
            Assert.True(problems.Count == 0 == inRange, $"{field}={value}: the server says [{string.Join("; ", problems.Select(p => p.Message))}]");
            if (!inRange) Assert.Equal(field, Assert.Single(problems).Field);
        }
    }

    [Theory]
    [MemberData(nameof(BoundedFields))]
    public void Defaults_are_the_dumped_ones_everywhere(string field)
    {
        long dumped = KongSchemaField(field)["default"]!.GetValue<long>();
        Assert.Equal(dumped, Convert.ToInt64(OptionsProperty(field).GetValue(new TokenValidationOptions()), CultureInfo.InvariantCulture));
        // the generated declaration accessor is named after the property: Fields.ClockSkewSeconds declares clock_skew_seconds
        string property = typeof(GitLabCiAuthConfig.Fields).GetProperties().Single(p => ((SchemaField)p.GetValue(null)!).Name == field).Name;
        var configProperty = typeof(GitLabCiAuthConfig).GetProperty(property)!;
        Assert.Equal(dumped, Convert.ToInt64(configProperty.GetValue(new GitLabCiAuthConfig()), CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Every_integer_field_of_the_dump_is_bounded()
    {
        var config = DumpedConfig();
        foreach (var name in KongSchemaNames(config))
        {
            var t = KongSchemaField(name);
            if ((string?)t["type"] == "integer") Assert.True(t["between"] is not null, $"{name} has no range");
        }
        Assert.Equal(8, KongSchemaNames(config).Count(n => KongSchemaField(n)["between"] is not null));
    }

    [Fact]
    public void Key_source_defaults_are_the_schema_defaults()
    {
        var settings = KeySourceSettings.FromOptions(new TokenValidationOptions { Issuer = "https://gitlab.example.com", Audiences = ["a"] });
        var unset = new KeySourceSettings { Kind = KeySourceKind.Static, Issuer = "https://gitlab.example.com" };
        Assert.Equal(settings.RefreshInterval, unset.RefreshInterval);
        Assert.Equal(settings.RefetchCooldown, unset.RefetchCooldown);
        Assert.Equal(settings.StaleLimit, unset.StaleLimit);
        Assert.Equal(settings.FetchTimeout, unset.FetchTimeout);
        Assert.Equal(TimeSpan.FromSeconds(GitLabCiAuthConfig.Fields.JwksRefreshSeconds.IntegerDefault), unset.RefreshInterval);
    }

    [Fact]
    public void Stale_window_shorter_than_the_refresh_is_refused_by_the_server_only()
    {
        // no Kong schema rule can compare two fields: the dump accepts it, the server refuses it naming the field
        var c = Encoding.UTF8.GetBytes("""
            {"issuer":"https://gitlab.example.com","audiences":["a"],"rules":[{"name":"any","claims":{"project_id":["*"]}}],
             "jwks_refresh_seconds":7200,"jwks_stale_seconds":3600}
            """);
        var problem = Assert.Single(Plugin.Lint(c));
        Assert.Equal("jwks_stale_seconds", problem.Field);
        Assert.Contains("at least jwks_refresh_seconds", problem.Message);
    }
}
