using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>The binary serving `--plugin example` to the Kong simulator, over both wire protocols.</summary>
public sealed class ExamplePluginTests
{
    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task Serves_the_example_plugin(KongProtocol protocol)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "--protocol", Example.Args(protocol), "-kong-prefix", dir.Path);
        await using var kong = Example.Simulator(dir.ExampleSocket, protocol);
        var entity = kong.AddPlugin("{}");

        var ok = await Example.AssertServesAsync(kong, entity, "job-42");
        Assert.Equal(["kong.request.get_header", "kong.request.get_header", "kong.service.request.set_header"], ok.PdkCalls);
        Assert.Null(ok.Exit);
        Assert.Equal(1, ok.InstanceStarts);

        var denied = await kong.Worker(0).RunAsync(entity, "access", Example.Request("deny"));
        Assert.True(denied.Outcome == SimOutcome.Exited, denied.ToString());
        Assert.Equal(403, denied.Status);
        Assert.Equal(403, denied.Exit!.Status);
        Assert.Contains("denied by example", denied.Exit.BodyText);
        Assert.Equal("application/json", denied.Exit.Headers["Content-Type"]);
        Assert.Null(denied.UpstreamHeaders["x-example"]);
        Assert.Equal(ok.InstanceId, denied.InstanceId);

        var again = await Example.AssertServesAsync(kong, entity, "after-deny"); // the server survived Kong abandoning the connection
        Assert.Equal(ok.InstanceId, again.InstanceId);
        Assert.Equal(0, again.Retries);
        Assert.False(host.HasExited);
    }

    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task A_config_change_restarts_the_instance_with_the_new_config(KongProtocol protocol)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "--protocol", Example.Args(protocol), "-kong-prefix", dir.Path);
        await using var kong = Example.Simulator(dir.ExampleSocket, protocol);
        var entity = kong.AddPlugin("{}");
        var first = await Example.AssertServesAsync(kong, entity, "a");

        kong.UpdateConfig(entity, """{"request_header":"x-job","upstream_header":"x-who","greeting":"hi"}""");
        var request = Example.Request("ignored");
        request.Headers["x-job"] = "job-7";
        var r = await kong.Worker(0).RunAsync(entity, "access", request);

        Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r.ToString());
        Assert.Equal("hi job-7@api.test", r.UpstreamHeaders["x-who"]);
        Assert.Null(r.UpstreamHeaders["x-example"]);
        Assert.Equal(1, r.InstanceStarts);
        Assert.NotEqual(first.InstanceId, r.InstanceId);
        Assert.Contains(first.InstanceId!.Value, r.ClosedInstances);
    }

    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task Concurrent_requests_on_several_workers_get_their_own_answers(KongProtocol protocol)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "--protocol", Example.Args(protocol), "-kong-prefix", dir.Path);
        await using var kong = Example.Simulator(dir.ExampleSocket, protocol, workers: 4);
        var entity = kong.AddPlugin("{}");

        var tasks = Enumerable.Range(0, 200).Select(async i =>
        {
            string value = $"req-{i}";
            var r = await kong.Worker(i % 4).RunAsync(entity, "access", Example.Request(value));
            return (value, r);
        }).ToArray();
        var results = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));

        foreach (var (value, r) in results)
        {
            Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r.ToString());
            Assert.Equal(Example.Expected(value), r.UpstreamHeaders["x-example"]);
        }
        // one instance per worker (Kong's per-worker cache), each distinct
        Assert.Equal(4, results.Select(x => x.r.InstanceId).Distinct().Count());
    }
}
