using GitLabCiAuth.TestSupport;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests.Infrastructure;

/// <summary>Driving the binary's `--plugin example` (reads x-request-id and host, sets x-example; "deny" is a 403) through the simulator.</summary>
public static class Example
{
    public const string Host = "api.test";

    /// <summary>Cosocket timeout of the simulators in these tests: bounded, far below Kong's 60 s.</summary>
    public static readonly TimeSpan KongTimeout = TimeSpan.FromSeconds(20);

    public static string Args(KongProtocol protocol) => protocol == KongProtocol.MsgPack ? "MsgPack:1" : "ProtoBuf:1";

    public static KongSimulator Simulator(string socket, KongProtocol protocol = KongProtocol.ProtoBuf, int workers = 1) =>
        new(socket, protocol, "example", workers, new KongSimulatorOptions { Timeout = KongTimeout });

    public static SimRequest Request(string value)
    {
        var r = new SimRequest { Host = Host };
        r.Headers["host"] = Host;
        r.Headers["x-request-id"] = value;
        return r;
    }

    public static string Expected(string value) => $"hello {value}@{Host}";

    /// <summary>One allowed request: the event completes and the upstream gets x-example.</summary>
    public static async Task<SimResult> AssertServesAsync(KongSimulator kong, PluginEntity entity, string value, int worker = 0)
    {
        var r = await kong.Worker(worker).RunAsync(entity, "access", Request(value));
        Assert.True(r.Outcome == SimOutcome.Completed && r.Status == 200, r.ToString());
        Assert.Equal(Expected(value), r.UpstreamHeaders["x-example"]);
        return r;
    }

    /// <summary>A fresh simulator, one request: the server at <paramref name="socket"/> serves the example plugin.</summary>
    public static async Task AssertServesAsync(string socket, KongProtocol protocol = KongProtocol.ProtoBuf)
    {
        await using var kong = Simulator(socket, protocol);
        var entity = kong.AddPlugin("{}");
        await AssertServesAsync(kong, entity, "probe-" + Guid.NewGuid().ToString("N")[..8]);
    }
}
