using System.Text.Json;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Testing;

namespace KongPlugin1.Tests;

/// <summary>
/// Plays Kong against the plugin over a real Unix socket (Kong's bytes, its worker pool and instance cache), on both
/// of Kong's plugin-server protocols.
/// </summary>
public sealed class PluginTests
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Greets_the_caller_upstream(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new Plugin(), protocol);
        var entity = host.Kong.AddPlugin("""{"greeting":"welcome"}""");

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-user"] = "ada" } });

        Assert.Equal(200, r.Status);
        Assert.Null(r.Exit);
        Assert.Equal("welcome, ada", r.UpstreamHeaders["x-greeting"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Without_the_header_passes_or_is_refused_as_configured(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new Plugin(), protocol);
        var optional = host.Kong.AddPlugin("{}");
        var required = host.Kong.AddPlugin("""{"required":true}""");

        var passed = await host.Kong.Worker(0).RunAsync(optional, "access", new SimRequest());
        var refused = await host.Kong.Worker(0).RunAsync(required, "access", new SimRequest());

        Assert.Equal(200, passed.Status);
        Assert.Null(passed.UpstreamHeaders["x-greeting"]);
        Assert.Equal(401, refused.Status);
        Assert.Contains("who are you?", refused.BodyText);
    }

    [Fact]
    public void The_schema_Kong_reads_declares_every_field_with_its_default()
    {
        using var dump = JsonDocument.Parse(PluginDump.Render(new Plugin().Info, PluginDump.ProtoBuf));
        string text = dump.RootElement.GetRawText();

        Assert.Contains("\"my-plugin\"", text);
        foreach (string field in new[] { "request_header", "upstream_header", "greeting", "required" })
            Assert.Contains($"\"{field}\"", text);
        Assert.Contains("\"x-greeting\"", text);
    }
}
