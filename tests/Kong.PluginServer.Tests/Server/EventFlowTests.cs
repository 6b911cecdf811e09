using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

public class EventFlowTests
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Reads_two_headers_and_sets_one(KongProtocol protocol)
    {
        await using var host = PluginTestHost.Start(new EchoPlugin(), protocol);
        var entity = host.Kong.AddPlugin("""{"header":"x-id"}""");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-id"] = "42", ["host"] = "api" } });
        Assert.True(r.Status == 200, r.Error);
        Assert.Equal("42@api", r.UpstreamHeaders["x-out"]);
        Assert.Equal(3, r.PdkCalls.Count);
    }

    [Fact]
    public async Task ProtoBuf_pipelines_the_three_calls_into_two_round_trips()
    {
        await using var host = PluginTestHost.Start(new EchoPlugin());
        var entity = host.Kong.AddPlugin("{}");
        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "a", ["host"] = "h" } });
        Assert.Equal(200, r.Status);
        long writes = host.Server.EventWrites;
        r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "b", ["host"] = "h" } });
        Assert.Equal(200, r.Status);
        Assert.Equal(3, r.RoundTrips);                    // Kong answered three calls...
        Assert.Equal(2, host.Server.EventWrites - writes); // ...from two server writes: the protocol's floor
    }
}
