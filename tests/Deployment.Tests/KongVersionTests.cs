using System.Text.Json.Nodes;
using Deployment.Tests.Infrastructure;

namespace Deployment.Tests;

/// <summary>
/// kong/ claims Kong 3.4 to 3.9: every bundled plugin config under kong/ may use only fields (and enumerated values)
/// that exist in each of those versions, or Kong refuses the whole declarative config ("unknown field").
/// </summary>
public sealed class KongVersionTests
{
    /// <summary>The Kong versions kong/ and the README claim.</summary>
    private static readonly Version[] Supported = [new(3, 4), new(3, 5), new(3, 6), new(3, 7), new(3, 8), new(3, 9)];

    /// <summary>A config field of a bundled plugin: the first Kong version whose schema.lua has it, and the first that no longer accepts it.</summary>
    private sealed record Field(Version Since, Version? RemovedIn = null, string[]? OneOf = null)
    {
        public bool ExistsIn(Version v) => v >= Since && (RemovedIn is null || v < RemovedIn);
    }

    private static readonly Version V34 = new(3, 4), V36 = new(3, 6), V38 = new(3, 8);

    /// <summary>
    /// Config fields of the bundled plugins kong/ uses, from kong/plugins/&lt;name&gt;/schema.lua at the tags 3.4.0 to
    /// 3.9.0 ("since 3.4" means present at 3.4.0 or earlier). rate-limiting's redis_* fields became shorthand fields
    /// of the `redis` record in 3.6 (still accepted, deprecated until 4.0).
    /// </summary>
    private static readonly Dictionary<string, Dictionary<string, Field>> BundledPluginFields = new()
    {
        ["acl"] = new()
        {
            ["allow"] = new(V34), ["deny"] = new(V34), ["hide_groups_header"] = new(V34),
            ["always_use_authenticated_groups"] = new(V38),
        },
        ["rate-limiting"] = new()
        {
            ["second"] = new(V34), ["minute"] = new(V34), ["hour"] = new(V34), ["day"] = new(V34), ["month"] = new(V34), ["year"] = new(V34),
            ["limit_by"] = new(V34, OneOf: ["consumer", "credential", "ip", "service", "header", "path"]),
            ["header_name"] = new(V34), ["path"] = new(V34),
            // "cluster" needs a database: not in DB-less Kong nor on hybrid data planes
            ["policy"] = new(V34, OneOf: ["local", "cluster", "redis"]),
            ["fault_tolerant"] = new(V34), ["hide_client_headers"] = new(V34), ["error_code"] = new(V34), ["error_message"] = new(V34),
            ["sync_rate"] = new(V34),
            ["redis"] = new(V36),
            ["redis_host"] = new(V34), ["redis_port"] = new(V34), ["redis_password"] = new(V34), ["redis_username"] = new(V34),
            ["redis_ssl"] = new(V34), ["redis_ssl_verify"] = new(V34), ["redis_server_name"] = new(V34), ["redis_timeout"] = new(V34),
            ["redis_database"] = new(V34),
        },
        ["file-log"] = new()
        {
            ["path"] = new(V34), ["reopen"] = new(V34), ["custom_fields_by_lua"] = new(V34),
        },
    };

    /// <summary>Every plugin entry with a config in the YAML files under kong/: declarative files and KongPlugin/KongClusterPlugin manifests.</summary>
    public static TheoryData<string, string, string> BundledPluginConfigs()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var (file, name, config) in KongFiles.PluginConfigs())
            if (name != Infrastructure.Deployment.PluginName) data.Add(file, name, config.ToJsonString());
        return data;
    }

    [Fact]
    public void The_claimed_versions_are_the_READMEs()
    {
        Assert.Contains("## Kong setup (3.4 to 3.9)", Repo.Read(Repo.File("README.md")));
        Assert.Equal(new Version(3, 4), Supported[0]);
        Assert.Equal(new Version(3, 9), Supported[^1]);
    }

    [Fact]
    public void Kong_yml_uses_bundled_plugins()
    {
        Assert.Contains(BundledPluginConfigs(), row => (string)row[0] == "kong/kong.yml");
    }

    [Theory]
    [MemberData(nameof(BundledPluginConfigs))]
    public void Bundled_plugin_config_is_valid_on_every_supported_Kong(string file, string plugin, string configJson)
    {
        Assert.True(BundledPluginFields.TryGetValue(plugin, out var fields), $"{file}: {plugin} is not in the version table; add its fields from its schema.lua history");
        var config = JsonNode.Parse(configJson)!.AsObject();
        foreach (var (key, value) in config)
        {
            Assert.True(fields!.TryGetValue(key, out var field), $"{file}: {plugin}.{key} is not a config field of {plugin} in any supported version");
            var missing = Supported.Where(v => !field!.ExistsIn(v)).ToList();
            Assert.True(missing.Count == 0, $"{file}: {plugin}.{key} does not exist in Kong {string.Join(", ", missing)}: that Kong refuses the config");
            if (field!.OneOf is { } oneOf && value is JsonValue)
                Assert.Contains((string)value!, oneOf);
        }
        if (plugin == "rate-limiting")
        {
            Assert.NotEqual("cluster", (string?)config["policy"]);   // DB-less and data planes have no database
        }
    }

    [Fact]
    public void The_table_knows_the_field_that_made_kong_yml_3_8_only()
    {
        var field = BundledPluginFields["acl"]["always_use_authenticated_groups"];
        Assert.False(field.ExistsIn(new Version(3, 7)));
        Assert.True(field.ExistsIn(new Version(3, 8)));
        Assert.True(BundledPluginFields["rate-limiting"]["redis_host"].ExistsIn(new Version(3, 9)));   // a shorthand since 3.6
        Assert.False(BundledPluginFields["rate-limiting"]["redis"].ExistsIn(new Version(3, 5)));
    }
}
