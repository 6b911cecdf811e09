using System.Text.Json.Nodes;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>Configs refused at instance start: the request fails with 500, the reason names the field, other configs keep working.</summary>
public sealed class ConfigEndToEndTests
{
    private static (Action<JsonObject> Edit, string[] Mentions) Case(string name) => name switch
    {
        "no-allow-rule" => (c => c["rules"] = PluginHarness.Rules("""[{"name":"deny-all","effect":"deny","claims":{"project_id":["*"]}}]"""),
            ["config.rules", "allow rule"]),
        "rules-missing" => (c => c.Remove("rules"), ["config.rules"]),
        "rules-empty" => (c => c["rules"] = new JsonArray(), ["config.rules"]),
        "bad-regex" => (c => c["rules"] = PluginHarness.Rules("""[{"name":"deploy","claims":{"ref":["main","re:(unclosed"]}}]"""),
            ["rules[0].claims.ref", "deploy"]),
        "unknown-request-claim" => (c => c["rules"] = PluginHarness.Rules("""[{"name":"by-host","claims":{"@host":["api"]}}]"""),
            ["rules[0].claims.@host", "by-host"]),
        "bad-effect" => (c => c["rules"] = PluginHarness.Rules("""[{"name":"x","effect":"maybe","claims":{"project_id":["1"]}}]"""),
            ["effect"]),
        "audiences-empty" => (c => c["audiences"] = new JsonArray(), ["config.audiences"]),
        "audiences-missing" => (c => c.Remove("audiences"), ["config.audiences"]),
        "issuer-missing" => (c => c.Remove("issuer"), ["config.issuer"]),
        "http-issuer-not-allowed" => (c => c["allow_insecure_http"] = false, ["config.issuer", "allow_insecure_http"]),
        "issuer-trailing-slash" => (c => c["issuer"] = c["issuer"]!.GetValue<string>() + "/", ["config.issuer"]),
        "hs256-algorithm" => (c => c["algorithms"] = new JsonArray("HS256"), ["config.algorithms"]),
        "static-jwks-and-jwks-uri" => (c =>
        {
            c["static_jwks"] = """{"keys":[]}""";
            c["jwks_uri"] = "http://127.0.0.1:1/keys";
        }, ["config.static_jwks"]),
        "bad-upstream-header-name" => (c => c["upstream_headers"] = new JsonObject { ["project_id"] = "X Project" }, ["upstream_headers.project_id"]),
        "upstream-header-is-the-token-header" => (c => c["upstream_headers"] = new JsonObject { ["project_id"] = "Authorization" }, ["upstream_headers.project_id"]),
        "bad-credential-template" => (c => c["credential_template"] = "gitlab-{project_id", ["config.credential_template"]),
        "bad-mode" => (c => c["mode"] = "audit", ["config.mode"]),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name),
    };

    public static TheoryData<string, KongProtocol> Refused()
    {
        var data = new TheoryData<string, KongProtocol>();
        foreach (var name in new[]
                 {
                     "no-allow-rule", "rules-missing", "rules-empty", "bad-regex", "unknown-request-claim", "bad-effect",
                     "audiences-empty", "audiences-missing", "issuer-missing", "http-issuer-not-allowed", "issuer-trailing-slash",
                     "hs256-algorithm", "static-jwks-and-jwks-uri", "bad-upstream-header-name", "upstream-header-is-the-token-header",
                     "bad-credential-template", "bad-mode",
                 })
        {
            data.Add(name, KongProtocol.ProtoBuf);
            data.Add(name, KongProtocol.MsgPack);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Refused_config_fails_the_request_with_500_and_names_the_field(string name, KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol);
        var (edit, mentions) = Case(name);
        var good = h.Add();
        var bad = h.Add(edit);
        var token = h.Minter.Mint();

        var r = await h.RunAsync(bad, token);

        Assert.True(r.Status == 500 && r.Outcome == SimOutcome.Failed, r.ToString());
        Assert.False(r.Authenticated);
        var refusal = h.ServerLogText.Split('\n').FirstOrDefault(l => l.Contains("instance refused", StringComparison.Ordinal));
        Assert.True(refusal is not null, h.ServerLogText);
        foreach (var m in mentions) Assert.Contains(m, refusal, StringComparison.Ordinal);
        if (protocol == KongProtocol.MsgPack) Assert.Contains(mentions[0], r.Error);

        // the server keeps serving the other config, and keeps refusing the bad one
        await h.AllowedAsync(good, token);
        Assert.Equal(500, (await h.RunAsync(bad, token)).Status);
        await h.AllowedAsync(good, h.Minter.Mint());
    }

    [Fact]
    public async Task Config_with_kong_defaults_as_explicit_nulls_and_empty_objects_is_accepted()
    {
        // Kong sends unset optional fields as null and empty arrays as {} (cjson)
        await using var h = PluginHarness.Start();
        var entity = h.Kong.AddPlugin(h.BaseConfig().ToJsonString(),
            nullFields: ["jwks_uri", "static_jwks", "jwks_ca_file", "consumer_claim", "anonymous"]);
        var withEmpty = h.Add(c => c["authenticated_groups"] = new JsonArray());

        await h.AllowedAsync(entity, h.Minter.Mint());
        await h.AllowedAsync(withEmpty, h.Minter.Mint());
    }
}
