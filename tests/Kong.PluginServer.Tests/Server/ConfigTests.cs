using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>Kong's config JSON at StartInstance: refused when invalid, read leniently otherwise.</summary>
public class ConfigTests
{
    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Invalid_config_refuses_the_instance_with_a_500_and_the_server_keeps_serving(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        var bad = host.Kong.AddPlugin("""{"mode":"nope"}""");
        var good = host.Kong.AddPlugin("""{"mode":"echo"}""");
        var worker = host.Kong.Worker(0);

        var r = await worker.RunAsync(bad, "access").Within();
        Assert.Equal(SimOutcome.Failed, r.Outcome);
        Assert.Equal(500, r.Status);
        Assert.Equal(0, r.Retries);           // a refused start is not replayed
        Assert.Null(r.InstanceId);            // no event was sent
        Assert.Empty(r.PdkCalls);
        Assert.Equal(0, host.Server.Registry.Count);
        Assert.Equal(0, host.Server.Registry.HandlerCount);

        r = await worker.RunAsync(good, "access", new SimRequest { Headers = { ["x-in"] = "ok", ["host"] = "h" } }).Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("ok@h", r.UpstreamHeaders["x-out"]);
        Assert.Equal(1, host.Server.Registry.Count);
    }

    [Theory]
    [InlineData("""{"mode":"nope"}""")]
    [InlineData("""{"mode":7}""")]
    [InlineData("""{"tags":"not-a-list"}""")]
    [InlineData("""{"mode":""")]
    [InlineData("""[1,2]""")]
    public async Task ProtoBuf_invalid_config_closes_that_connection_without_a_reply(string config)
    {
        await using var host = T.Host(new EchoPlugin());
        await using var other = await T.Connect(host);
        int otherId = await T.StartPb(other, 2, "echo", "{}");

        await using var c = await T.Connect(host);
        await c.SendFrameAsync(KongWire.StartInstance(2, "echo", config)).Within();
        Assert.True(await c.WaitForCloseAsync(T.Bound));
        Assert.Equal(0, c.BufferedBytes);
        Assert.Equal(1, host.Server.Registry.Count);

        // the other connection is untouched
        await other.SendFrameAsync(KongWire.HandleEvent(3, otherId, "rewrite")).Within();
        Assert.Equal(new byte[] { 0, 0, 0, 0, 2, 0, 0, 0, 0x08, 0x03 }, await other.ReadExactAsync(10).Within());
    }

    [Fact]
    public async Task MsgPack_invalid_config_answers_an_error_and_keeps_the_connection()
    {
        await using var host = T.Host(new EchoPlugin(), KongProtocol.MsgPack);
        await using var c = await T.Connect(host);
        var (err, result) = await T.CallMp(c, 1, "plugin.StartInstance", new Dictionary<string, object?> { ["Name"] = "echo", ["Config"] = """{"mode":"nope"}""" });
        Assert.Contains("mode", Assert.IsType<string>(err));
        Assert.Null(result);
        Assert.Equal(0, host.Server.Registry.Count);
        Assert.True(await T.StartMp(c, 2, "echo", "{}") > 0);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Lenient_json_unknown_keys_nulls_and_empty_objects_for_arrays(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        // Kong sends explicit nulls for unset fields, {} for an empty array, and keys the plugin does not know
        var entity = host.Kong.AddPlugin("""{"mode":"config","tags":[],"unknown":{"deep":[1,2]},"other":"x"}""", nullFields: ["header"]);
        Assert.Contains("\"tags\":{}", entity.KongConfigJson);
        Assert.Contains("\"header\":null", entity.KongConfigJson);
        Assert.Contains("\"__seq__\":", entity.KongConfigJson);
        var r = await host.Kong.Worker(0).RunAsync(entity, "access").Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("x-in|config|", r.UpstreamHeaders["x-config"]); // null = the default; {} = empty list

        host.Kong.UpdateConfig(entity, """{"mode":"config","header":"x-h","tags":["a","b"],"route_id":null}""");
        r = await host.Kong.Worker(0).RunAsync(entity, "access").Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal("x-h|config|a,b", r.UpstreamHeaders["x-config"]);
    }
}
