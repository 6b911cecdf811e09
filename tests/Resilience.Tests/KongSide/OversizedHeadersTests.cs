using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.KongSide;

/// <summary>
/// A request whose headers make Kong's get_headers result larger than the binary's default --max-frame-bytes (possible
/// only when a deployment raised nginx's header buffers and not the limit): refused with 500 on both protocols, never
/// let through. On MsgPack:1 a closed connection would fail open, so the oversized Step is read to its end and answered.
/// </summary>
public sealed class OversizedHeadersTests
{
    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task Headers_over_the_frame_limit_are_refused_and_the_next_request_is_served(KongProtocol protocol)
    {
        await using var rig = await BinaryRig.StartAsync(protocol, "error"); // the default limit: 64 KiB
        await using var kong = rig.Simulator();
        var entity = kong.AddPlugin(rig.ConfigJson());
        var token = rig.Minter.Mint();

        SimRequest Request(int padding)
        {
            var r = new SimRequest { Path = "/deploy", Host = "api.test" };
            r.Headers["host"] = "api.test";
            r.Headers["authorization"] = "Bearer " + token;
            if (padding > 0) r.Headers["x-padding"] = new string('p', padding);
            return r;
        }

        var big = await kong.Worker(0).RunAsync(entity, "access", Request(100 * 1024)).WaitAsync(Bounds.Hang);
        Assert.True(big.Outcome == SimOutcome.Exited && big.Status == 500, big.ToString());
        Assert.Equal(0, big.Retries);

        var ok = await kong.Worker(0).RunAsync(entity, "access", Request(0)).WaitAsync(Bounds.Hang);
        Assert.True(ok.Status == 200, ok.ToString());
        Assert.False(string.IsNullOrEmpty(ok.UpstreamHeaders["X-GitLab-Project-Id"]), ok.ToString());
    }
}
