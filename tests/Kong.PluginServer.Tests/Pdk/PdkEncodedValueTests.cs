using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.MsgPack;
using Kong.PluginServer.Protocol.ProtoBuf;

namespace Kong.PluginServer.Tests.Pdk;

/// <summary>
/// <see cref="PdkEncodedValue"/>: a kept wire form is byte for byte what encoding the value gives, on both protocols and
/// for every argument shape that takes a map; bytes are kept only from the configured use on, and then copied.
/// </summary>
public class PdkEncodedValueTests
{
    /// <summary>A map whose entries can change between calls: shows whether a call encoded it or copied kept bytes.</summary>
    private sealed class MutableMap : IPdkValue
    {
        public List<(string Key, string Value)> Entries { get; } = [];
        public void WriteTo(PdkValueWriter w)
        {
            w.BeginMap(Entries.Count);
            foreach (var (k, v) in Entries) { w.Key(k); w.String(v); }
            w.EndMap();
        }
    }

    private static MutableMap Identity()
    {
        var m = new MutableMap();
        m.Entries.Add(("X-GitLab-Project-Path", "group/project"));
        m.Entries.Add(("X-GitLab-Ref", "main"));
        m.Entries.Add(("X-Long", new string('v', 300))); // a nested length over one varint byte
        return m;
    }

    public static TheoryData<string, string> Shapes() => new()
    {
        { "ProtoBuf:1", "set_headers" }, { "ProtoBuf:1", "set_serialize_value" }, { "ProtoBuf:1", "exit" },
        { "MsgPack:1", "set_headers" }, { "MsgPack:1", "set_serialize_value" }, { "MsgPack:1", "exit" },
    };

    private static byte[] Encode(string protocol, string shape, object value)
    {
        using var o = new OutputBuffer();
        PdkCodec codec = protocol == "ProtoBuf:1" ? new ProtoBufPdkCodec() : new MsgPackPdkCodec();
        switch (shape)
        {
            case "set_headers": codec.WriteCall(o, PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: value)); break;
            case "set_serialize_value": codec.WriteCall(o, PdkMethods.LogSetSerializeValue, PdkArgs.KV("gitlab_ci", value)); break;
            default: codec.WriteCall(o, PdkMethods.ResponseExit, new PdkArgs(number: 403, bytes: "{}"u8.ToArray(), value: value)); break;
        }
        return o.WrittenSpan.ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Kept_bytes_equal_the_encoded_value_and_are_copied_from_the_second_use(string protocol, string shape)
    {
        var map = Identity();
        byte[] direct = Encode(protocol, shape, map);
        var encoded = new PdkEncodedValue(map);

        Assert.Equal(direct, Encode(protocol, shape, encoded)); // first use: encoded, nothing kept
        Assert.Equal(0, encoded.KeptForms);
        Assert.Equal(direct, Encode(protocol, shape, encoded)); // second use: encoded and kept
        Assert.Equal(1, encoded.KeptForms);

        map.Entries[1] = ("X-GitLab-Ref", "changed-after-keeping");
        Assert.NotEqual(direct, Encode(protocol, shape, map));
        Assert.Equal(direct, Encode(protocol, shape, encoded)); // third use: the kept bytes, not the changed value
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void With_no_uses_before_keeping_the_first_call_keeps_its_bytes(string protocol, string shape)
    {
        var map = Identity();
        byte[] direct = Encode(protocol, shape, map);
        var encoded = new PdkEncodedValue(map, encodeAfterUses: 0);
        Assert.Equal(direct, Encode(protocol, shape, encoded));
        Assert.Equal(1, encoded.KeptForms);
        map.Entries.Clear();
        Assert.Equal(direct, Encode(protocol, shape, encoded));
    }

    [Fact]
    public void Each_protocol_and_argument_shape_keeps_its_own_form()
    {
        var encoded = new PdkEncodedValue(Identity(), encodeAfterUses: 0);
        var structForm = Encode("ProtoBuf:1", "set_headers", encoded);
        var valueForm = Encode("ProtoBuf:1", "set_serialize_value", encoded);
        var msgPack = Encode("MsgPack:1", "set_headers", encoded);
        Assert.Equal(3, encoded.KeptForms);
        // a ProtoBuf Struct body and a Value body differ; each call still gets its own shape's bytes
        Assert.Equal(structForm, Encode("ProtoBuf:1", "set_headers", encoded));
        Assert.Equal(valueForm, Encode("ProtoBuf:1", "set_serialize_value", encoded));
        Assert.Equal(msgPack, Encode("MsgPack:1", "set_headers", encoded));
        Assert.Equal(Encode("ProtoBuf:1", "set_serialize_value", Identity()), valueForm);
    }

    [Fact]
    public void Nested_inside_another_value_it_is_written_as_its_value()
    {
        var encoded = new PdkEncodedValue(Identity(), encodeAfterUses: 0);
        var outer = new Dictionary<string, object?> { ["identity"] = encoded };
        var plain = new Dictionary<string, object?> { ["identity"] = Identity() };
        foreach (var protocol in new[] { "ProtoBuf:1", "MsgPack:1" })
            Assert.Equal(Encode(protocol, "set_serialize_value", plain), Encode(protocol, "set_serialize_value", outer));
        Assert.Equal(0, encoded.KeptForms);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        Assert.Throws<ArgumentNullException>(() => new PdkEncodedValue(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PdkEncodedValue(Identity(), -1));
    }
}
