using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.MsgPack;
using Kong.PluginServer.Protocol.ProtoBuf;
using MessagePack;

namespace Bench;

/// <summary>Framing: the length-prefixed frames of one event, written into the output buffer and received from a socket into the input buffer and cut there, as the event loop does.</summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private readonly OutputBuffer _out = new();
    private byte[] _name = [], _args = [], _replies = [];
    private Socket _client = null!, _server = null!, _listener = null!;
    private readonly InputBuffer _input = new();
    private string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        _name = "kong.request.get_header"u8.ToArray();
        _args = Fixtures.PbString("x-request-id");
        // Kong's three replies of the example event, as they arrive: two String replies and an empty one
        var r1 = Fixtures.PbString("4f9d0000002a-8a3c-4b1e-9f2d-2c7e5a1b0d3f");
        var r2 = Fixtures.PbString("api.acme.example");
        var ms = new MemoryStream();
        foreach (var r in new[] { r1, r2, Array.Empty<byte>() })
        {
            ms.Write(BitConverter.GetBytes((uint)r.Length));
            ms.Write(r);
        }
        _replies = ms.ToArray();
        _dir = Directory.CreateTempSubdirectory("bench-framing-").FullName;
        var path = Path.Combine(_dir, "s.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(1);
        _client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _client.Connect(new UnixDomainSocketEndPoint(path));
        _server = _listener.Accept();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _input.Dispose();
        _client.Dispose(); _server.Dispose(); _listener.Dispose();
        Directory.Delete(_dir, true);
    }

    /// <summary>Three PDK steps (name frame + argument frame each), the end marker and an RpcReturn, into the pooled buffer.</summary>
    [Benchmark]
    public int WriteEventFrames()
    {
        for (int i = 0; i < 3; i++)
        {
            _out.WriteFrame(_name);
            int at = _out.BeginFrame();
            _out.Write(_args);
            _out.EndFrame(at);
        }
        _out.WriteFrame(ReadOnlySpan<byte>.Empty);
        RpcCodec.WriteReturn(_out, 1234);
        int n = _out.Length;
        _out.Clear();
        return n;
    }

    /// <summary>Kong's three replies read back as frames from a real Unix socket (one recv syscall included).</summary>
    [Benchmark]
    public int ReadReplyFramesFromSocket()
    {
        _client.Send(_replies);
        int total = 0, frames = 0;
        while (frames < 3)
        {
            var free = _input.FreeSegment();
            _input.Advance(_server.Receive(free.Array!, free.Offset, free.Count, SocketFlags.None));
            while (_input.Length >= 4)
            {
                int len = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_input.Span);
                if (_input.Length < 4 + len) break;
                total += _input.Slice(4, len).Length;
                _input.Consume(4 + len);
                frames++;
            }
        }
        return total;
    }
}

/// <summary>
/// The server side of one whole access event over in-memory buffers: decode the RpcCall, encode the PDK step frames,
/// decode Kong's replies, encode the end marker and the RpcReturn (ProtoBuf:1); the msgpack-rpc envelopes and
/// callbacks (MsgPack:1). No plugin logic: protocol cost only.
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private readonly OutputBuffer _out = new();
    private readonly ProtoBufPdkCodec _pb = new();
    private readonly MsgPackPdkCodec _mp = new();
    private byte[] _call = [], _reply1 = [], _reply2 = [], _pbHeaders = [];
    private byte[] _mpHandleEvent = [], _mpStep1 = [], _mpStep2 = [], _mpStep3 = [], _mpHeaders = [];
    private IPdkValue _identity = null!, _audit = null!;
    private KongCredential _credential = null!;

    [GlobalSetup]
    public void Setup()
    {
        _call = Fixtures.HandleEventCall();
        _reply1 = Fixtures.PbString("4f9d0000002a-8a3c-4b1e-9f2d-2c7e5a1b0d3f");
        _reply2 = Fixtures.PbString("api.acme.example");
        var token = Fixtures.Minter.Mint();
        _pbHeaders = Fixtures.PbHeadersReply("Bearer " + token);
        _mpHeaders = Fixtures.MpHeadersReply("Bearer " + token);
        _mpHandleEvent = Kong.PluginServer.Testing.KongWire.MsgPackRequest(11, "plugin.HandleEvent",
            new Dictionary<string, object?> { ["InstanceId"] = 7.0, ["EventName"] = "access" });
        _mpStep1 = Kong.PluginServer.Testing.KongWire.MsgPackRequest(12, "plugin.Step",
            new Dictionary<string, object?> { ["EventId"] = 42.0, ["Data"] = "4f9d0000002a-8a3c-4b1e-9f2d-2c7e5a1b0d3f" });
        _mpStep2 = Kong.PluginServer.Testing.KongWire.MsgPackRequest(13, "plugin.Step",
            new Dictionary<string, object?> { ["EventId"] = 42.0, ["Data"] = "api.acme.example" });
        _mpStep3 = Kong.PluginServer.Testing.KongWire.MsgPackRequest(14, "plugin.Step", new Dictionary<string, object?> { ["EventId"] = 42.0 });
        _identity = new HeaderMap(11);
        _audit = new HeaderMap(22);
        _credential = new KongCredential("gitlab-project-16234");
    }

    /// <summary>A fixed string map written as a Struct/map (stands for the identity headers and the audit record).</summary>
    private sealed class HeaderMap(int n) : IPdkValue
    {
        private readonly (string K, string V)[] _kv = Enumerable.Range(0, n).Select(i => ($"x-gitlab-claim-{i}", $"value-{i}-acme/platform/billing-api")).ToArray();

        public void WriteTo(PdkValueWriter w)
        {
            w.BeginMap(_kv.Length);
            foreach (var (k, v) in _kv) { w.Key(k); w.String(v); }
            w.EndMap();
        }
    }

    /// <summary>The example plugin's event: get_header x2 (one write), set_header + end + RpcReturn (one write).</summary>
    [Benchmark(Baseline = true)]
    public int ProtoBuf_ExampleEvent()
    {
        var cmd = RpcCodec.DecodeCall(_call);
        _pb.WriteCall(_out, PdkMethods.RequestGetHeader, PdkArgs.Of("x-request-id"));
        _pb.WriteCall(_out, PdkMethods.RequestGetHeader, PdkArgs.Of("host"));
        int n = _out.Length;
        _out.Clear();
        n += _pb.ReadUtf8(_reply1).Length + _pb.ReadUtf8(_reply2).Length;
        _pb.WriteCall(_out, PdkMethods.ServiceRequestSetHeader, PdkArgs.KV("x-example", "hello 4f9d0000002a@api.acme.example"));
        _out.WriteFrame(ReadOnlySpan<byte>.Empty);
        RpcCodec.WriteReturn(_out, cmd.Sequence);
        n += _out.Length;
        _out.Clear();
        return n;
    }

    /// <summary>gitlab-ci-auth's allowed event: get_headers (1000) and a header lookup; then set_headers (11),
    /// clear_header, authenticate(credential), set_serialize_value (22 fields), end + RpcReturn.</summary>
    [Benchmark]
    public int ProtoBuf_GitLabAllowEvent()
    {
        var cmd = RpcCodec.DecodeCall(_call);
        _pb.WriteCall(_out, PdkMethods.RequestGetHeaders, PdkArgs.Of(1000));
        int n = _out.Length;
        _out.Clear();
        var view = new KongHeaderView(_pb, _pbHeaders);
        n += view.Count("authorization") + view.First("authorization").Length;
        _pb.WriteCall(_out, PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: _identity));
        _pb.WriteCall(_out, PdkMethods.ServiceRequestClearHeader, PdkArgs.Of("authorization"));
        _pb.WriteCall(_out, PdkMethods.ClientAuthenticate, new PdkArgs(value: null, value2: _credential));
        _pb.WriteCall(_out, PdkMethods.LogSetSerializeValue, PdkArgs.KV("gitlab_ci", _audit));
        _out.WriteFrame(ReadOnlySpan<byte>.Empty);
        RpcCodec.WriteReturn(_out, cmd.Sequence);
        n += _out.Length;
        _out.Clear();
        return n;
    }

    /// <summary>MsgPack:1 codec only: the example's three callbacks and the two reply decodes (no rpc envelopes).</summary>
    [Benchmark]
    public int MsgPack_ExampleCallbacksOnly()
    {
        _mp.WriteCall(_out, PdkMethods.RequestGetHeader, PdkArgs.Of("x-request-id"));
        _mp.WriteCall(_out, PdkMethods.RequestGetHeader, PdkArgs.Of("host"));
        _mp.WriteCall(_out, PdkMethods.ServiceRequestSetHeader, PdkArgs.KV("x-example", "hello 4f9d0000002a@api.acme.example"));
        int n = _out.Length;
        _out.Clear();
        n += _mp.ReadUtf8(StepData(_mpStep1)).Length + _mp.ReadUtf8(StepData(_mpStep2)).Length;
        return n;
    }

    /// <summary>
    /// MsgPack:1 as the server serves it (steps mirrored from MsgPackConnection/MsgPackEvent, same library calls): 4 RPCs
    /// (HandleEvent + 3 Steps), each parsed (method name as a string, HandleEvent params as a map), each callback copied
    /// to an array and wrapped in a response envelope, replies decoded as the example plugin does (strings).
    /// </summary>
    [Benchmark]
    public int MsgPack_ExampleEvent_AsServed()
    {
        int n = 0;
        // HandleEvent: params read into a map, then the first callback
        var (method, param, msgId) = ParseRequest(_mpHandleEvent);
        var r = new MessagePackReader(param);
        var map = MsgPackValues.Read(ref r) as Dictionary<string, object?>;
        n += map!.Count + method.Length;
        n += Respond(msgId, Callback(PdkMethods.RequestGetHeader, PdkArgs.Of("x-request-id")));
        // Step 1 -> reply of get_header, next callback
        (method, param, msgId) = ParseRequest(_mpStep1);
        n += _mp.ReadString(ParseStep(param)).Length;
        n += Respond(msgId, Callback(PdkMethods.RequestGetHeader, PdkArgs.Of("host")));
        (method, param, msgId) = ParseRequest(_mpStep2);
        n += _mp.ReadString(ParseStep(param)).Length;
        n += Respond(msgId, Callback(PdkMethods.ServiceRequestSetHeader, PdkArgs.KV("x-example", "hello 4f9d0000002a@api.acme.example")));
        (method, param, msgId) = ParseRequest(_mpStep3);
        n += ParseStep(param).Length;
        n += Respond(msgId, null);
        return n;
    }

    private static ReadOnlyMemory<byte> StepData(byte[] request)
    {
        var (_, param, _) = ParseRequest(request);
        return ParseStep(param);
    }

    private static (string Method, ReadOnlyMemory<byte> Param, uint MsgId) ParseRequest(ReadOnlyMemory<byte> message)
    {
        var r = new MessagePackReader(message);
        r.ReadArrayHeader();
        r.ReadInt32();
        uint msgId = r.ReadUInt32();
        string method = r.ReadString()!;
        int pn = r.ReadArrayHeader();
        ReadOnlyMemory<byte> param = default;
        if (pn > 0)
        {
            long start = r.Consumed;
            r.Skip();
            param = message.Slice((int)start, (int)(r.Consumed - start));
        }
        return (method, param, msgId);
    }

    private static ReadOnlyMemory<byte> ParseStep(ReadOnlyMemory<byte> param)
    {
        var r = new MessagePackReader(param);
        int n = r.ReadMapHeader();
        ReadOnlyMemory<byte> data = default;
        for (int i = 0; i < n; i++)
        {
            string? key = r.ReadString();
            if (key == "EventId") r.ReadInt32();
            else if (key == "Data")
            {
                long start = r.Consumed;
                r.Skip();
                data = param.Slice((int)start, (int)(r.Consumed - start));
            }
            else r.Skip();
        }
        return data;
    }

    private readonly OutputBuffer _scratch = new(256);

    private byte[] Callback(PdkMethod m, in PdkArgs a)
    {
        _scratch.Clear();
        _mp.WriteCall(_scratch, m, a);
        return _scratch.WrittenSpan.ToArray();
    }

    private int Respond(uint msgId, byte[]? callback)
    {
        var w = new MessagePackWriter(_out);
        w.WriteArrayHeader(4);
        w.Write(1);
        w.Write(msgId);
        w.WriteNil();
        w.WriteMapHeader(2);
        w.Write("EventId"); w.Write(42);
        w.Write("Data");
        if (callback is null) w.Write("ret"); else w.WriteRaw(callback);
        w.Flush();
        int n = _out.Length;
        _out.Clear();
        return n;
    }
}
