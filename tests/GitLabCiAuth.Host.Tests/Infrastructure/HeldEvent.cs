using GitLabCiAuth.TestSupport;
using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests.Infrastructure;

/// <summary>
/// A ProtoBuf:1 access event of the example plugin held open from the Kong side: the server has sent its two
/// <c>kong.request.get_header</c> calls and waits for Kong's replies, so the event is in flight for as long as
/// the test wants.
/// </summary>
public sealed class HeldEvent : IAsyncDisposable
{
    private const long StartSequence = 2, EventSequence = 3;
    private readonly KongConnection _conn;

    private HeldEvent(KongConnection conn, int instanceId)
    {
        _conn = conn;
        InstanceId = instanceId;
    }

    public int InstanceId { get; }
    public KongConnection Connection => _conn;

    public static async Task<HeldEvent> StartAsync(string socket)
    {
        var conn = await KongConnection.ConnectAsync(socket, Example.KongTimeout);
        try
        {
            await conn.SendFrameAsync(KongWire.StartInstance(StartSequence, "example", """{"__seq__":1,"__plugin_id":"a3d1c1a2-0000-4000-8000-000000000001"}"""));
            var started = await conn.ReadRpcReturnAsync();
            Assert.Equal(StartSequence, started.Sequence);
            int id = started.InstanceStatus.InstanceId;
            Assert.True(id > 0, "instance ids are positive");

            await conn.SendFrameAsync(KongWire.HandleEvent(EventSequence, id, "access"));
            // the example pipelines both reads in one write: method, args, method, args
            Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await conn.ReadFrameAsync()));
            Assert.Equal("x-request-id", StringV(await conn.ReadFrameAsync()));
            Assert.Equal("kong.request.get_header", Encoding.ASCII.GetString(await conn.ReadFrameAsync()));
            Assert.Equal("host", StringV(await conn.ReadFrameAsync()));
            return new HeldEvent(conn, id);
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    /// <summary>Answers the two reads and checks that the event ends properly: set_header, the end marker, RpcReturn{sequence}.</summary>
    public async Task CompleteAsync(string requestId, string host)
    {
        await _conn.SendFrameAsync(new Kong.PluginServer.Protocol.ProtoBuf.Messages.String { V = requestId });
        await _conn.SendFrameAsync(new Kong.PluginServer.Protocol.ProtoBuf.Messages.String { V = host });

        Assert.Equal("kong.service.request.set_header", Encoding.ASCII.GetString(await _conn.ReadFrameAsync()));
        var kv = KV.Parser.ParseFrom(await _conn.ReadFrameAsync());
        Assert.Equal("x-example", kv.K);
        Assert.Equal($"hello {requestId}@{host}", kv.V.StringValue);
        Assert.Empty(await _conn.ReadFrameAsync()); // end of PDK steps
        var ret = await _conn.ReadRpcReturnAsync();
        Assert.Equal(EventSequence, ret.Sequence);
        await _conn.SendFrameAsync(ReadOnlyMemory<byte>.Empty); // Kong's (empty) reply to set_header
    }

    private static string StringV(byte[] frame) => Kong.PluginServer.Protocol.ProtoBuf.Messages.String.Parser.ParseFrom(frame).V;

    public ValueTask DisposeAsync() => _conn.DisposeAsync();
}
