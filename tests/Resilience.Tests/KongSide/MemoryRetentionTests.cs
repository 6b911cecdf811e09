using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using Resilience.Tests.Fuzz;
using Resilience.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Resilience.Tests.KongSide;

/// <summary>Frames at the maximum size, and far above it: memory must come back once they are gone.</summary>
public sealed class MemoryRetentionTests(ITestOutputHelper output)
{
    private const int Connections = 16;
    private const int MaxFrameBytes = 64 * 1024;          // the binary's default --max-frame-bytes
    private const int OversizedBytes = 15 * 1024 * 1024;  // read and dropped without being buffered

    [Fact]
    public async Task A_burst_of_large_frames_leaves_no_lasting_rss()
    {
        await using var rig = await BinaryRig.StartAsync(KongProtocol.ProtoBuf, "error");
        var config = rig.ConfigJson();
        await using var kong = rig.Simulator(workers: 2);
        var traffic = new GoodTraffic(kong, kong.AddPlugin(config), rig.Minter);
        await traffic.RunCountAsync(loops: 4, perLoop: 10);
        var baseline = rig.Sample();

        // RpcCall{sequence, <unknown field 15: N bytes>, cmd_get_plugin_names{}}: a frame the server reads in full and answers
        static byte[] Call(int padding) =>
            [.. PbWire.Int(1, 2), .. PbWire.Bytes(15, new byte[padding]), .. new RpcCall { CmdGetPluginNames = new() }.ToByteArray()];
        var atMax = Call(MaxFrameBytes - 64);
        Assert.True(atMax.Length <= MaxFrameBytes);
        await Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => Task.Run(async () =>
        {
            using var c = await RawConn.ConnectAsync(rig.Socket);
            for (int i = 0; i < 4; i++)
            {
                Assert.True(await c.SendFrameAsync(atMax));
                Assert.NotNull(await c.ReadFrameAsync());
            }
        })));
        var afterMax = rig.Sample();

        // far above the maximum: Kong's send completes (the frame is read to its end), nothing of it is kept, the connection closes
        var oversized = Call(OversizedBytes);
        await Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => Task.Run(async () =>
        {
            using var c = await RawConn.ConnectAsync(rig.Socket);
            Assert.True(await c.SendFrameAsync(oversized));
            Assert.Null(await c.ReadFrameAsync()); // EOF: no answer to a frame the server would not read
        })));
        var afterOversized = rig.Sample();

        // ordinary traffic afterwards, on as many connections
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await traffic.RunAsync(loops: Connections, stop.Token, minPerLoop: 5);
        traffic.AssertClean();
        var after = rig.Sample();
        output.WriteLine($"baseline {baseline}; after {Connections} x 4 frames of {atMax.Length} B: {afterMax}; after {Connections} x {OversizedBytes >> 20} MiB frames: {afterOversized}; after 10 s of small traffic {after}");
        Assert.True(afterOversized.RssKiB - baseline.RssKiB <= 64 * 1024, $"oversized frames were buffered: RSS {afterOversized} (baseline {baseline})");
        Assert.True(after.RssKiB - baseline.RssKiB <= 64 * 1024, $"RSS stayed at {after} (baseline {baseline})");
    }
}
