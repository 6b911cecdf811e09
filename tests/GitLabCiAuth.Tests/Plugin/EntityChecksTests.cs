using System.Text;
using System.Text.Json.Nodes;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.TestSupport;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>
/// The schema Kong enforces: `-dump` declares the plugin entity like Kong's bundled auth plugins (no Consumer
/// scoping, HTTP protocols) and every cross-field rule of the server's validation that Kong's schema language can
/// express. Each bad combination is refused twice: by the server's config check at instance start (naming the field)
/// and by the dumped entity check, played with Kong's semantics from the dump's JSON alone (<see cref="KongSchema"/>).
/// </summary>
public sealed class EntityChecksTests
{
    private static readonly MinterKey Key = MinterKey.CreateRsa();
    private static readonly GitLabCiAuthPlugin Plugin = new(new JwksKeyStore());
    private static readonly JsonObject Dumped = JsonNode.Parse(PluginDump.SchemaJson(Plugin.Info))!.AsObject();

    private static JsonObject Good() => new()
    {
        ["issuer"] = "https://gitlab.example.com",
        ["audiences"] = new JsonArray("https://api.example.com"),
        ["static_jwks"] = MinterKey.JwksJson(Key),
        ["rules"] = new JsonArray(new JsonObject { ["name"] = "any", ["claims"] = new JsonObject { ["project_id"] = new JsonArray("*") } }),
    };

    /// <summary>A bad combination, the field the server names, and the entity check (kind and its fields) Kong refuses it with.</summary>
    public static TheoryData<string, string, string, string> BadCombinations() => new()
    {
        { "neither issuer nor issuers", "issuer", "at_least_one_of", "config.issuer,config.issuers" },
        { "jwks_uri and static_jwks", "static_jwks", "mutually_exclusive", "config.jwks_uri,config.static_jwks" },
        { "consumer_by id without consumer_claim", "consumer_claim", "conditional", "config.consumer_by,config.consumer_claim" },
        { "http issuer without allow_insecure_http", "issuer", "conditional", "config.allow_insecure_http,config.issuer" },
        { "http jwks_uri without allow_insecure_http", "jwks_uri", "conditional", "config.allow_insecure_http,config.jwks_uri" },
    };

    private static JsonObject Bad(string name)
    {
        var c = Good();
        switch (name)
        {
            case "neither issuer nor issuers":
                c.Remove("issuer");
                c.Remove("static_jwks");
                break;
            case "jwks_uri and static_jwks":
                c["jwks_uri"] = "https://gitlab.example.com/oauth/discovery/keys";
                break;
            case "consumer_by id without consumer_claim":
                c["consumer_by"] = "id";
                break;
            case "http issuer without allow_insecure_http":
                c["issuer"] = "http://gitlab.example.com";
                break;
            case "http jwks_uri without allow_insecure_http":
                c.Remove("static_jwks");
                c["jwks_uri"] = "http://gitlab.example.com/oauth/discovery/keys";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(name));
        }
        return c;
    }

    /// <summary>What the server does with a config at StartInstance: canonical form, then the handler (schema, entity checks, validation, policy).</summary>
    private static void StartInstance(JsonObject config)
    {
        var json = Encoding.UTF8.GetBytes(config.ToJsonString());
        _ = Plugin.Canonicalize(json);
        Plugin.CreateHandler(json).Dispose();
    }

    private static KongVerdict Kong(JsonObject config, Action<JsonObject>? entity = null)
    {
        var e = new JsonObject { ["config"] = config.DeepClone() };
        entity?.Invoke(e);
        return KongSchema.ValidatePlugin(Dumped, e);
    }

    [Fact]
    public void Good_config_starts_and_passes_every_dumped_check()
    {
        StartInstance(Good());
        var verdict = Kong(Good());
        Assert.True(verdict.Accepted, verdict.ToString());
        // Kong filled the entity fields' defaults
        Assert.Equal(Schema.HttpProtocols, verdict.Entity["protocols"]!.AsArray().Select(p => (string)p!));
        Assert.Null(verdict.Entity["consumer"]);
    }

    [Theory]
    [MemberData(nameof(BadCombinations))]
    public void Bad_combination_is_refused_by_the_server_and_by_the_dumped_check(string name, string field, string kind, string checkFields)
    {
        var config = Bad(name);

        // the server, as Kong's StartInstance reaches it
        var e = Assert.Throws<ConfigException>(() => StartInstance(config));
        Assert.Equal(field, e.Field);
        // and the same through the lint path, which lists every problem: this one only
        var problem = Assert.Single(Plugin.Lint(Encoding.UTF8.GetBytes(config.ToJsonString())));
        Assert.Equal(field, problem.Field);

        // Kong, from the dump alone: exactly this entity check refuses it, and nothing else does
        var verdict = Kong(config);
        Assert.Empty(verdict.FieldErrors);
        var failure = Assert.Single(verdict.CheckFailures);
        Assert.Equal(kind, failure.Kind);
        var names = failure.Kind == "conditional"
            ? [(string)failure.Argument["if_field"]!, (string)failure.Argument["then_field"]!]
            : failure.Argument.AsArray().Select(n => (string)n!).ToArray();
        Assert.Equal(checkFields, string.Join(',', names));
        // Kong names the same field the server names
        if (failure.FieldError is { } fe) Assert.StartsWith($"config.{field}:", fe);
    }

    [Fact]
    public void Every_dumped_entity_check_refuses_one_of_the_bad_combinations()
    {
        var checks = Dumped["entity_checks"]!.AsArray();
        var used = new HashSet<int>();
        foreach (var row in BadCombinations())
            foreach (var f in Kong(Bad((string)row[0])).CheckFailures) used.Add(f.Index);
        Assert.Equal(Enumerable.Range(0, checks.Count), used.Order());
    }

    [Fact]
    public void Insecure_http_passes_both_when_allowed_explicitly()
    {
        var c = Good();
        c.Remove("static_jwks");
        c["issuer"] = "http://gitlab.lab";
        c["jwks_uri"] = "http://gitlab.lab/oauth/discovery/keys";
        c["allow_insecure_http"] = true;
        Assert.Empty(Plugin.Lint(Encoding.UTF8.GetBytes(c.ToJsonString())));
        Assert.True(Kong(c).Accepted, Kong(c).ToString());
    }

    [Fact]
    public void Consumer_by_id_with_a_claim_passes_both()
    {
        var c = Good();
        c["consumer_by"] = "id";
        c["consumer_claim"] = "kong_consumer_id";
        StartInstance(c);
        Assert.True(Kong(c).Accepted, Kong(c).ToString());
    }

    [Fact]
    public void Kong_refuses_scoping_the_plugin_to_a_consumer()
    {
        var verdict = Kong(Good(), e => e["consumer"] = new JsonObject { ["id"] = Guid.NewGuid().ToString() });
        Assert.Contains("entity.consumer: value must be null", verdict.FieldErrors);
    }

    [Theory]
    [InlineData("http", true)]
    [InlineData("grpcs", true)]
    [InlineData("tcp", false)]
    [InlineData("tls_passthrough", false)]
    public void Kong_accepts_only_http_and_grpc_protocols(string protocol, bool accepted)
    {
        var verdict = Kong(Good(), e => e["protocols"] = new JsonArray(protocol));
        Assert.True(verdict.Accepted == accepted, verdict.ToString());
    }

    [Fact]
    public void Top_level_fields_are_Kongs_auth_plugin_typedefs_in_Kongs_order()
    {
        var fields = Dumped["fields"]!.AsArray().Select(f => f!.AsObject().Single()).ToList();
        Assert.Equal(["consumer", "protocols", "config"], fields.Select(f => f.Key));
        // typedefs.no_consumer: { type = "foreign", reference = "consumers", eq = null }
        var consumer = fields[0].Value!.AsObject();
        Assert.Equal("foreign", (string?)consumer["type"]);
        Assert.Equal("consumers", (string?)consumer["reference"]);
        Assert.True(consumer.ContainsKey("eq") && consumer["eq"] is null);
        // typedefs.protocols_http: a required set of http protocols, all of them by default
        var protocols = fields[1].Value!.AsObject();
        Assert.Equal("set", (string?)protocols["type"]);
        Assert.True((bool)protocols["required"]!);
        Assert.Equal(["grpc", "grpcs", "http", "https"], protocols["default"]!.AsArray().Select(p => (string)p!));
        Assert.Equal(["grpc", "grpcs", "http", "https"], protocols["elements"]!["one_of"]!.AsArray().Select(p => (string)p!));
    }

    /// <summary>Cross-field rules Kong's schema language cannot express: the server refuses them, every dumped check passes them.</summary>
    [Theory]
    [InlineData("stale shorter than refresh", "jwks_stale_seconds")]
    [InlineData("upstream header is the token header", "upstream_headers.project_id")]
    [InlineData("duplicate rule names", "rules[1].name")]
    [InlineData("no allow rule", "rules")]
    public void Server_only_rules_are_refused_by_the_server_and_pass_the_dumped_checks(string name, string field)
    {
        var c = Good();
        switch (name)
        {
            case "stale shorter than refresh":
                c["jwks_refresh_seconds"] = 7200;
                c["jwks_stale_seconds"] = 3600;
                break;
            case "upstream header is the token header":
                c["upstream_headers"] = new JsonObject { ["project_id"] = "Authorization" };
                break;
            case "duplicate rule names":
                c["rules"]!.AsArray().Add(new JsonObject { ["name"] = "any", ["claims"] = new JsonObject { ["ref"] = new JsonArray("main") } });
                break;
            case "no allow rule":
                c["rules"]![0]!["effect"] = "deny";
                break;
        }
        Assert.Equal(field, Assert.Throws<ConfigException>(() => StartInstance(c)).Field);
        var verdict = Kong(c);
        Assert.True(verdict.Accepted, verdict.ToString());
    }

    [Fact]
    public void Descriptions_fit_Kongs_metaschema()
    {
        // Kong's metaschema: description is a string of 10 to 500 characters
        foreach (var d in Descriptions(Dumped))
            Assert.InRange(d.Length, 10, 500);
    }

    private static IEnumerable<string> Descriptions(JsonNode? node) => node switch
    {
        JsonObject o => (o["description"] is JsonValue v ? [(string)v!] : Array.Empty<string>()).Concat(o.Where(kv => kv.Key != "description").SelectMany(kv => Descriptions(kv.Value))),
        JsonArray a => a.SelectMany(Descriptions),
        _ => [],
    };
}
