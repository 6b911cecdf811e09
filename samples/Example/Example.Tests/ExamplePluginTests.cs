using Kong.PluginServer.Testing;

namespace Example.Tests;

/// <summary>The example plugin as Kong sees it, on both protocols, through the simulator.</summary>
public sealed class ExamplePluginTests
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private static SimRequest Request(string id) => new() { Headers = { ["x-request-id"] = id, ["host"] = "api.test" } };

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Sets_the_upstream_header_with_three_pdk_calls_in_two_round_trips(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new ExamplePlugin(), protocol);
        var entity = host.Kong.AddPlugin("{}");

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", Request("job-42"));

        Assert.Equal(200, r.Status);
        Assert.Equal("hello job-42@api.test", r.UpstreamHeaders["x-example"]);
        Assert.Equal(["kong.request.get_header", "kong.request.get_header", "kong.service.request.set_header"], r.PdkCalls);
        // the server's socket writes for the event: ProtoBuf:1 pipelines the calls, MsgPack:1 pays one per getter
        Assert.Equal(protocol == KongProtocol.ProtoBuf ? 2 : 4, host.Server.EventWrites);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Deny_is_answered_403_with_json_and_nothing_upstream(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new ExamplePlugin(), protocol);
        var entity = host.Kong.AddPlugin("{}");

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", Request("deny"));

        Assert.Equal(403, r.Status);
        Assert.Contains("denied by example", r.Exit!.BodyText);
        Assert.Equal("application/json", r.Exit.Headers["Content-Type"]);
        Assert.Null(r.UpstreamHeaders["x-example"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task The_config_renames_the_headers_and_read_body_reports_the_body_size(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new ExamplePlugin(), protocol);
        var entity = host.Kong.AddPlugin("""{"request_header":"x-job","upstream_header":"x-who","greeting":"hi","read_body":true}""");
        var request = Request("ignored");
        request.Headers["x-job"] = "job-7";
        request.Body = "12345"u8.ToArray();

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", request);

        Assert.Equal(200, r.Status);
        Assert.Equal("hi job-7@api.test", r.UpstreamHeaders["x-who"]);
        Assert.Equal("5", r.UpstreamHeaders["x-body-bytes"]);
        Assert.Null(r.UpstreamHeaders["x-example"]);
    }

    [Fact]
    public async Task A_config_breaking_the_schema_is_refused()
    {
        await using var host = PluginTestHost.Start(new ExamplePlugin(), KongProtocol.MsgPack);
        var entity = host.Kong.AddPlugin("""{"upstream_header":""}""");

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", Request("job-1"));

        Assert.Equal(500, r.Status);
        Assert.Contains(r.KongLog, l => l.Contains("upstream_header", StringComparison.Ordinal));
    }
}
