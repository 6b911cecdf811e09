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
        var config = schema.GetProperty("fields")[0].GetProperty("config");
        Assert.Equal("record", config.GetProperty("type").GetString());
        foreach (var f in config.GetProperty("fields").EnumerateArray())
            Assert.Single(f.EnumerateObject()); // every fields entry is a one-key object
        var keys = config.GetProperty("fields")[1].GetProperty("keys");
        Assert.Equal("array", keys.GetProperty("type").GetString());
        Assert.Equal(1, keys.GetProperty("len_min").GetInt32());
    }
}
