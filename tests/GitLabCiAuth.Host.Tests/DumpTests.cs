using System.Text.Json;
using System.Text.RegularExpressions;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;

namespace GitLabCiAuth.Host.Tests;

/// <summary>
/// `-dump` is Kong's query command: run with io.popen at every start, stdout decoded with cjson. It must print
/// exactly one JSON line that Kong's plugin loader accepts, and touch nothing.
/// </summary>
public sealed class DumpTests
{
    // Kong's entity checkers (kong/db/schema/init.lua, Schema.entity_checkers)
    private static readonly HashSet<string> EntityCheckers =
        ["at_least_one_of", "conditional_at_least_one_of", "only_one_of", "distinct", "conditional", "custom_entity_check",
         "mutually_required", "mutually_exclusive", "mutually_exclusive_sets"];

    // Kong's schema type names (kong/db/schema/init.lua)
    private static readonly HashSet<string> KongTypes =
        ["string", "boolean", "integer", "number", "array", "set", "map", "record", "foreign", "json", "function"];

    [Theory]
    [InlineData("-dump")]
    [InlineData("--dump")]
    public async Task Dump_prints_one_line_of_Kong_loadable_json_and_nothing_else(string flag)
    {
        using var dir = new TempDir();
        var run = await HostProcess.RunAsync(flag, "-kong-prefix", dir.Path);

        Assert.True(run.ExitCode == 0, run.ToString());
        var line = SingleLine(run.Stdout);
        Assert.Empty(dir.Entries()); // no socket (nor anything else) created

        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal("ProtoBuf:1", root.GetProperty("Protocol").GetString());
        var plugin = AssertKongPlugin(root, "gitlab-ci-auth");
        // like Kong's bundled auth plugins: never scoped to a Consumer, HTTP and gRPC only, then the config
        Assert.Equal(["consumer", "protocols", "config"],
            plugin.GetProperty("Schema").GetProperty("fields").EnumerateArray().Select(f => f.EnumerateObject().Single().Name));
        Assert.True(plugin.GetProperty("Schema").GetProperty("entity_checks").GetArrayLength() > 0);
        var config = ConfigOf(plugin);
        var names = config.GetProperty("fields").EnumerateArray().Select(f => f.EnumerateObject().Single().Name).ToList();
        Assert.Contains("issuer", names);
        Assert.Contains("audiences", names);
        Assert.Contains("rules", names);
    }

    [Fact]
    public async Task Dump_reports_the_protocol_being_served()
    {
        var run = await HostProcess.RunAsync("--protocol", "MsgPack:1", "-dump");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var doc = JsonDocument.Parse(SingleLine(run.Stdout));
        Assert.Equal("MsgPack:1", doc.RootElement.GetProperty("Protocol").GetString());
        AssertKongPlugin(doc.RootElement, "gitlab-ci-auth");
    }

    [Fact]
    public async Task Dump_of_the_example_plugin_names_it()
    {
        var run = await HostProcess.RunAsync("--plugin", "example", "--dump");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var doc = JsonDocument.Parse(SingleLine(run.Stdout));
        var plugin = AssertKongPlugin(doc.RootElement, "example");
        var fields = ConfigOf(plugin).GetProperty("fields");
        Assert.Contains(fields.EnumerateArray(), f => f.TryGetProperty("request_header", out var rh) && rh.GetProperty("default").GetString() == "x-request-id");
    }

    [Fact]
    public async Task Dump_does_not_touch_a_stale_socket_file()
    {
        using var dir = new TempDir();
        Posix.CreateStaleSocket(dir.DefaultSocket);
        var before = File.GetLastWriteTimeUtc(dir.DefaultSocket);

        var run = await HostProcess.RunAsync("-dump", "-kong-prefix", dir.Path);

        Assert.True(run.ExitCode == 0, run.ToString());
        SingleLine(run.Stdout);
        Assert.True(File.Exists(dir.DefaultSocket), "-dump removed the socket file");
        Assert.Equal(before, File.GetLastWriteTimeUtc(dir.DefaultSocket));
        Assert.False(Posix.IsListening(dir.DefaultSocket));
    }

    [Fact]
    public async Task Version_matches_the_dump()
    {
        var version = await HostProcess.RunAsync("--version");
        var dump = await HostProcess.RunAsync("-dump");

        Assert.True(version.ExitCode == 0, version.ToString());
        using var doc = JsonDocument.Parse(SingleLine(dump.Stdout));
        Assert.Equal(doc.RootElement.GetProperty("Plugins")[0].GetProperty("Version").GetString(), SingleLine(version.Stdout));
    }

    private static JsonElement ConfigOf(JsonElement plugin) =>
        Assert.Single(plugin.GetProperty("Schema").GetProperty("fields").EnumerateArray(), f => f.TryGetProperty("config", out _)).GetProperty("config");

    /// <summary>stdout is exactly one non-empty line (with its newline) and nothing else.</summary>
    private static string SingleLine(string stdout)
    {
        Assert.EndsWith("\n", stdout);
        var body = stdout[..^1];
        Assert.False(string.IsNullOrWhiteSpace(body), "stdout is empty");
        Assert.DoesNotContain('\n', body);
        Assert.DoesNotContain('\r', body);
        Assert.Equal(body.Trim(), body);
        return body;
    }

    /// <summary>What Kong's loader checks (plugin_servers: Name, integral Priority, version, MetaSubSchema, phases).</summary>
    private static JsonElement AssertKongPlugin(JsonElement root, string name)
    {
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        var plugins = root.GetProperty("Plugins");
        Assert.Equal(JsonValueKind.Array, plugins.ValueKind);
        Assert.Equal(1, plugins.GetArrayLength()); // Kong 3.9+ uses only the first entry: one plugin per server
        var p = plugins[0];
        Assert.Equal(name, p.GetProperty("Name").GetString());

        var priority = p.GetProperty("Priority");
        Assert.Equal(JsonValueKind.Number, priority.ValueKind);
        Assert.Matches("^-?[0-9]+$", priority.GetRawText()); // "PRIORITY field is not a valid integer" otherwise
        Assert.True(priority.TryGetInt32(out _));

        Assert.Matches(new Regex("^[0-9]+\\.[0-9]+\\.[0-9]+$"), p.GetProperty("Version").GetString()!);

        var phases = p.GetProperty("Phases");
        Assert.Equal(["access"], phases.EnumerateArray().Select(e => e.GetString()!).ToArray());

        var schema = p.GetProperty("Schema");
        Assert.Equal(name, schema.GetProperty("name").GetString());
        var top = schema.GetProperty("fields");
        Assert.Equal(JsonValueKind.Array, top.ValueKind);
        Assert.All(top.EnumerateArray(), f => Assert.Single(f.EnumerateObject()));
        var config = Assert.Single(top.EnumerateArray(), f => f.TryGetProperty("config", out _)).GetProperty("config");
        Assert.Equal("record", config.GetProperty("type").GetString());
        Assert.True(config.GetProperty("fields").GetArrayLength() > 0);
        foreach (var f in top.EnumerateArray().Select(f => f.EnumerateObject().Single())) AssertTypedef(f.Value, f.Name);
        if (schema.TryGetProperty("entity_checks", out var checks))
        {
            // kong/db/schema/metaschema.lua: each entry names one of Kong's entity checkers
            foreach (var c in checks.EnumerateArray())
                Assert.Contains(Assert.Single(c.EnumerateObject()).Name, EntityCheckers);
        }
        return p;
    }

    /// <summary>A Kong typedef: a known type; records have a fields array of one-key objects; arrays/sets elements; maps keys and values.</summary>
    private static void AssertTypedef(JsonElement def, string path)
    {
        Assert.Equal(JsonValueKind.Object, def.ValueKind);
        var type = def.GetProperty("type").GetString();
        Assert.True(type is not null && KongTypes.Contains(type), $"{path}: '{type}' is not a Kong type");
        switch (type)
        {
            case "record":
                var fields = def.GetProperty("fields");
                Assert.Equal(JsonValueKind.Array, fields.ValueKind);
                foreach (var f in fields.EnumerateArray())
                {
                    Assert.Equal(JsonValueKind.Object, f.ValueKind);
                    var entry = Assert.Single(f.EnumerateObject()); // every fields entry is a one-key object
                    Assert.False(string.IsNullOrEmpty(entry.Name));
                    AssertTypedef(entry.Value, path + "." + entry.Name);
                }
                break;
            case "array" or "set":
                AssertTypedef(def.GetProperty("elements"), path + "[]");
                break;
            case "map":
                AssertTypedef(def.GetProperty("keys"), path + ".keys");
                AssertTypedef(def.GetProperty("values"), path + ".values");
                break;
            case "foreign":
                Assert.False(string.IsNullOrEmpty(def.GetProperty("reference").GetString()), $"{path}: foreign without reference");
                break;
        }
        if (def.TryGetProperty("between", out var between))
        {
            Assert.Equal(2, between.GetArrayLength());
            Assert.True(between[0].GetDouble() <= between[1].GetDouble(), $"{path}: between is reversed");
        }
        if (def.TryGetProperty("one_of", out var oneOf)) Assert.True(oneOf.GetArrayLength() > 0, $"{path}: empty one_of");
    }
}
