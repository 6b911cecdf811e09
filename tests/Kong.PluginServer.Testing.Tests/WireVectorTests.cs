using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using PbString = Kong.PluginServer.Protocol.ProtoBuf.Messages.String;

namespace Kong.PluginServer.Testing.Tests;

/// <summary>The byte vectors of docs/protocol.md#worked-example and Kong's naming/encoding rules.</summary>
public class WireVectorTests
{
    [Fact]
    public void StartInstance_call_matches_spec_bytes()
    {
        var frame = KongWire.Frame(KongWire.StartInstance(2, "my-auth", "{\"__seq__\": 7}"));
        Assert.Equal(Hex.Of(Hex.Parse("1e 00 00 00 | 08 02 8a 02 19 0a 07 'my-auth' 12 0e '{\"__seq__\": 7}'")), Hex.Of(frame));
    }

    [Fact]
    public void StartInstance_reply_vector_decodes_as_instance_status()
    {
        var bytes = Hex.Parse("08 02 8a 02 11 0a 07 'my-auth' 10 07 20 80 e2 cf aa 06");
        var ret = RpcReturn.Parser.ParseFrom(bytes);
        Assert.Equal(2, ret.Sequence);
        Assert.Equal(7, ret.InstanceStatus.InstanceId);
        Assert.Equal(1700000000, ret.InstanceStatus.StartedAt);
        Assert.Equal("16000000", Hex.Of(KongWire.Frame(bytes).AsSpan(0, 4)));
    }

    [Fact]
    public void HandleEvent_and_step_vectors_match_spec_bytes()
    {
        Assert.Equal(Hex.Of(Hex.Parse("0f 00 00 00 | 08 03 a2 02 0a 08 07 12 06 'access'")),
            Hex.Of(KongWire.Frame(KongWire.HandleEvent(3, 7, "access"))));
        Assert.Equal(Hex.Of(Hex.Parse("0f 00 00 00 | 0a 0d 'authorization'")), Hex.Of(KongWire.Frame(new PbString { V = "authorization" })));
        Assert.Equal(Hex.Of(Hex.Parse("0a 00 00 00 | 0a 08 'Bearer x'")), Hex.Of(KongWire.Frame(new PbString { V = "Bearer x" })));
        Assert.Equal("0200000008" + "03", Hex.Of(KongWire.Frame(new RpcReturn { Sequence = 3 })));
    }

    [Fact]
    public void ExitArgs_vector_matches_spec_bytes()
    {
        var exit = new ExitArgs { Status = 401, Body = Google.Protobuf.ByteString.CopyFromUtf8("no"), Headers = new Struct() };
        exit.Headers.Fields["WWW-Authenticate"] = Value.ForString("Bearer");
        Assert.Equal(Hex.Of(Hex.Parse("08 91 03 12 02 6e 6f 1a 1e 0a 1c 0a 10 'WWW-Authenticate' 12 08 1a 06 'Bearer'")), Hex.Of(exit.ToByteArray()));
    }

    [Fact]
    public void Method_names_follow_Kongs_rule_and_exceptions()
    {
        Assert.Equal(74, KongWire.PdkMethods.Count);
        Assert.Contains("kong.request.get_header", KongWire.PdkMethods);
        Assert.Contains("kong.nginx.get_tls1_version_str", KongWire.PdkMethods);
        Assert.Contains("kong.service.request.set_raw_body", KongWire.PdkMethods);
        Assert.Contains("kong.ctx.shared.set", KongWire.PdkMethods);
        Assert.Contains("kong.ctx.shared.get", KongWire.PdkMethods);
        Assert.DoesNotContain("kong.ctx.set_shared", KongWire.PdkMethods);
    }

    [Fact]
    public void Kong_value_quirks()
    {
        Assert.Equal("0801", Hex.Of(KongWire.KongValue(null).ToByteArray()));   // nil -> null_value = 1
        Assert.Equal("2000", Hex.Of(KongWire.KongValue(false).ToByteArray())); // oneof member written even when default
        Assert.Null(KongWire.UnwrapValue(Value.ForBool(false)));                 // false or ... -> nil
        Assert.Equal("NULL_VALUE", KongWire.UnwrapValue(Value.ForNull()));       // enum 0 arrives as its name
        Assert.Equal(1.0, KongWire.UnwrapValue(KongWire.KongValue(null)));      // Kong's own nil comes back as the number 1
        var empty = KongWire.KongValue(new List<object?>());
        Assert.Equal(Value.KindOneofCase.StructValue, empty.KindCase);        // an empty table has no [1]: struct
    }

    [Fact]
    public async Task Frames_are_written_as_two_writes_and_read_exactly()
    {
        await using var server = new FakePbServer { Handler = _ => Task.CompletedTask };
        await using var conn = await KongConnection.ConnectAsync(server.SocketPath, TimeSpan.FromSeconds(10));
        var start = KongWire.StartInstance(2, "my-auth", "{\"__seq__\": 7}");
        await conn.SendFrameAsync(start);
        Assert.Equal(2, conn.WritesSent); // length, then payload
        var reply = await conn.ReadRpcReturnAsync();
        Assert.Equal(2, reply.Sequence);
        Assert.Equal(1, conn.FramesReceived);
        Assert.Equal(0, conn.BufferedBytes);
        await conn.SendFrameAsync(ReadOnlyMemory<byte>.Empty);
        Assert.Equal(3, conn.WritesSent); // an empty frame is the length write only
        Assert.Empty(await conn.ReadFrameAsync());
        Assert.Equal(Hex.Of(KongWire.Frame(start)) + "00000000", Hex.Of(server.Received[1].ToArray()));
    }
}
