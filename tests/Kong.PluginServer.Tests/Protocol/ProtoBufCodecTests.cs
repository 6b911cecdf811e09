using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.ProtoBuf;
using M = Kong.PluginServer.Protocol.ProtoBuf.Messages;

namespace Kong.PluginServer.Tests.Protocol;

/// <summary>Byte-exact vectors of docs/protocol.md#worked-example and round trips through the generated messages.</summary>
public class ProtoBufCodecTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", ""));

    [Fact]
    public void Decodes_the_spec_StartInstance_call()
    {
        // 08 02 8a 02 19 0a 07 "my-auth" 12 0e '{"__seq__": 7}'
        var payload = Hex("08028a0219") .Concat(Hex("0a07")).Concat("my-auth"u8.ToArray()).Concat(Hex("120e")).Concat("{\"__seq__\": 7}"u8.ToArray()).ToArray();
        Assert.Equal(0x1e, payload.Length);
        var cmd = RpcCodec.DecodeCall(payload);
        Assert.Equal(2, cmd.Sequence);
        Assert.Equal(RpcCommandKind.StartInstance, cmd.Kind);
        Assert.Equal("my-auth", Encoding.UTF8.GetString(cmd.Name));
        Assert.Equal("{\"__seq__\": 7}", Encoding.UTF8.GetString(cmd.Config));
    }

    [Fact]
    public void Encodes_the_spec_instance_status_reply()
    {
        using var o = new OutputBuffer();
        RpcCodec.WriteInstanceStatus(o, 2, "my-auth", 7, 1700000000);
        var expected = Hex("16000000 08028a02 11 0a07").Concat("my-auth"u8.ToArray()).Concat(Hex("1007 2080e2cfaa06")).ToArray();
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(o.WrittenSpan));
    }

    [Fact]
    public void Decodes_the_spec_HandleEvent_call()
    {
        var payload = Hex("0803a2020a0807 1206").Concat("access"u8.ToArray()).ToArray();
        Assert.Equal(0x0f, payload.Length);
        var cmd = RpcCodec.DecodeCall(payload);
        Assert.Equal(3, cmd.Sequence);
        Assert.Equal(RpcCommandKind.HandleEvent, cmd.Kind);
        Assert.Equal(7, cmd.InstanceId);
        Assert.Equal("access", Encoding.UTF8.GetString(cmd.Name));
    }

    [Fact]
    public void Encodes_a_get_header_step_and_the_event_end_as_in_the_spec()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.RequestGetHeader, PdkArgs.Of("authorization"));
        o.WriteFrame(ReadOnlySpan<byte>.Empty);
        RpcCodec.WriteReturn(o, 3);
        var expected = Hex("17000000").Concat("kong.request.get_header"u8.ToArray())
            .Concat(Hex("0f000000 0a0d")).Concat("authorization"u8.ToArray())
            .Concat(Hex("00000000")).Concat(Hex("02000000 0803")).ToArray();
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(o.WrittenSpan));
    }

    [Fact]
    public void Encodes_the_spec_ExitArgs_example()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.ResponseExit,
            new PdkArgs(number: 401, bytes: "no"u8.ToArray(), value: new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer" }));
        var frames = Frames(o.WrittenSpan.ToArray());
        Assert.Equal("kong.response.exit", Encoding.ASCII.GetString(frames[0]));
        var expected = Hex("089103 12026e6f 1a1e 0a1c 0a10").Concat("WWW-Authenticate"u8.ToArray()).Concat(Hex("1208 1a06")).Concat("Bearer"u8.ToArray()).ToArray();
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(frames[1]));
    }

    [Fact]
    public void Exit_always_carries_a_status_field()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.ResponseExit, new PdkArgs(number: 204));
        var args = M.ExitArgs.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        Assert.Equal(204, args.Status);
    }

    [Fact]
    public void Get_headers_sends_a_max_even_at_the_default()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.RequestGetHeaders, PdkArgs.Of(PdkRequest.ClampMax(0)));
        Assert.Equal(1, M.Int.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]).V);
    }

    [Fact]
    public void Nested_values_round_trip_through_google_protobuf()
    {
        using var o = new OutputBuffer();
        var tree = new Dictionary<string, object?>
        {
            ["s"] = "x", ["n"] = 42L, ["d"] = 1.5, ["t"] = true,
            ["list"] = new List<object?> { "a", 2L, new Dictionary<string, object?> { ["deep"] = "y" } },
            ["long"] = new string('z', 300),
            ["empty"] = new Dictionary<string, object?>(),
        };
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.LogSetSerializeValue, PdkArgs.KV("gitlab_ci", tree));
        var kv = M.KV.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        Assert.Equal("gitlab_ci", kv.K);
        var fields = kv.V.StructValue.Fields;
        Assert.Equal("x", fields["s"].StringValue);
        Assert.Equal(42, fields["n"].NumberValue);
        Assert.Equal(1.5, fields["d"].NumberValue);
        Assert.True(fields["t"].BoolValue);
        Assert.Equal("a", fields["list"].ListValue.Values[0].StringValue);
        Assert.Equal(2, fields["list"].ListValue.Values[1].NumberValue);
        Assert.Equal("y", fields["list"].ListValue.Values[2].StructValue.Fields["deep"].StringValue);
        Assert.Equal(300, fields["long"].StringValue.Length);
        Assert.Empty(fields["empty"].StructValue.Fields);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(118)]   // the Value's length 127 at a string of 124
    [InlineData(119)]
    [InlineData(120)]
    [InlineData(124)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(127)]
    [InlineData(128)]
    [InlineData(16_370)]
    [InlineData(16_380)]
    [InlineData(16_384)]
    [InlineData(2_097_200)] // nested lengths of three and four varint bytes
    public void Nested_lengths_are_right_at_every_varint_width(int length)
    {
        // each nested message reserves one byte for its length and widens it when the length needs more: the lengths
        // around 127/128 and 16383/16384 move the bytes after them, at every depth
        using var o = new OutputBuffer();
        var text = new string('q', length);
        var tree = new Dictionary<string, object?>
        {
            ["a"] = text,
            ["inner"] = new Dictionary<string, object?> { ["b"] = text, ["list"] = new List<object?> { text, "after" } },
            ["z"] = "end",
        };
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.LogSetSerializeValue, PdkArgs.KV("k", tree));
        var kv = M.KV.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        var fields = kv.V.StructValue.Fields;
        Assert.Equal(text, fields["a"].StringValue);
        Assert.Equal(text, fields["inner"].StructValue.Fields["b"].StringValue);
        Assert.Equal(text, fields["inner"].StructValue.Fields["list"].ListValue.Values[0].StringValue);
        Assert.Equal("after", fields["inner"].StructValue.Fields["list"].ListValue.Values[1].StringValue);
        Assert.Equal("end", fields["z"].StringValue);
        // and the bytes are the canonical encoding (minimal varints), byte for byte what Google.Protobuf writes
        Assert.Equal(Convert.ToHexString(kv.ToByteArray()), Convert.ToHexString(Frames(o.WrittenSpan.ToArray())[1]));
    }

    [Fact]
    public void Log_arguments_are_a_ListValue()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.LogErr, new PdkArgs(value: new object?[] { "denied:", 403L }));
        var list = ListValue.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        Assert.Equal("denied:", list.Values[0].StringValue);
        Assert.Equal(403, list.Values[1].NumberValue);
    }

    [Fact]
    public void Set_headers_is_a_Struct_of_strings_and_lists()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.ServiceRequestSetHeaders,
            new PdkArgs(value: new Dictionary<string, string[]> { ["x-a"] = ["1"], ["x-b"] = ["2", "3"] }));
        var s = Struct.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        Assert.Equal("1", s.Fields["x-a"].ListValue.Values[0].StringValue);
        Assert.Equal(2, s.Fields["x-b"].ListValue.Values.Count);
    }

    [Fact]
    public void Authenticate_carries_only_the_given_parts()
    {
        using var o = new OutputBuffer();
        new ProtoBufPdkCodec().WriteCall(o, PdkMethods.ClientAuthenticate, new PdkArgs(value2: new KongCredential("gitlab-project-42")));
        var a = M.AuthenticateArgs.Parser.ParseFrom(Frames(o.WrittenSpan.ToArray())[1]);
        Assert.Null(a.Consumer);
        Assert.Equal("gitlab-project-42", a.Credential.Id);
    }

    [Fact]
    public void Reads_Kong_encoded_values_including_null_value_1()
    {
        var codec = new ProtoBufPdkCodec();
        var kongNil = new Value { NullValue = (NullValue)1 }.ToByteArray();
        Assert.Null(codec.ReadValue(kongNil));
        Assert.Equal("v", codec.ReadValue(new Value { StringValue = "v" }.ToByteArray()));
        Assert.Equal("", codec.ReadString(ReadOnlyMemory<byte>.Empty));
        Assert.Equal(-5, codec.ReadInt(new M.Int { V = -5 }.ToByteArray()));
        var headers = new Struct();
        headers.Fields["host"] = Value.ForString("api");
        headers.Fields["x-multi"] = Value.ForList(Value.ForString("a"), Value.ForString("b"));
        var map = codec.ReadMultiMap(headers.ToByteArray());
        Assert.Equal(["api"], map["host"]);
        Assert.Equal(["a", "b"], map["X-Multi"]);
    }

    [Theory]
    [InlineData("0a")]               // truncated tag payload
    [InlineData("08ffffffffffffffffffff01")] // varint too long
    [InlineData("8a02ff01")]         // length overruns
    [InlineData("0801")]             // no command
    public void Malformed_calls_raise_a_protocol_violation(string hex)
    {
        Assert.Throws<ProtocolViolationException>(() => RpcCodec.DecodeCall(Convert.FromHexString(hex)));
    }

    internal static List<byte[]> Frames(byte[] bytes)
    {
        var list = new List<byte[]>();
        int i = 0;
        while (i < bytes.Length)
        {
            int len = BitConverter.ToInt32(bytes, i);
            list.Add(bytes.AsSpan(i + 4, len).ToArray());
            i += 4 + len;
        }
        return list;
    }
}
