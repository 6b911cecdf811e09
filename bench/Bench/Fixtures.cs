using System.Text;
using GitLabCiAuth.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;

namespace Bench;

/// <summary>Shared test data: a real GitLab-shaped token, Kong's reply bytes, a production-like route config.</summary>
public static class Fixtures
{
    public const string Issuer = "https://gitlab.acme.example";
    public const string Audience = TokenMinter.DefaultAudience;

    private static readonly Lazy<(MinterKey Key, TokenMinter Minter)> s_minter = new(() =>
    {
        var key = MinterKey.CreateRsa(2048);
        return (key, new TokenMinter(Issuer, key, Audience));
    });

    public static MinterKey Key => s_minter.Value.Key;
    public static TokenMinter Minter => s_minter.Value.Minter;
    public static string StaticJwks => MinterKey.JwksJson(Key);

    public static List<KeyValuePair<string, string>> Headers(string? authorization) =>
    [
        new("host", "api.acme.example"),
        new("user-agent", "curl/8.5.0 gitlab-runner/17.4.0 (linux; amd64)"),
        new("accept", "application/json"),
        new("accept-encoding", "gzip, deflate, br"),
        new("accept-language", "en-US,en;q=0.9"),
        new("content-type", "application/json"),
        new("content-length", "187"),
        new("x-request-id", "4f9d0000002a-8a3c-4b1e-9f2d-2c7e5a1b0d3f"),
        new("x-forwarded-for", "10.42.7.19, 10.0.0.5"),
        new("x-forwarded-proto", "https"),
        new("x-forwarded-host", "api.acme.example"),
        new("x-real-ip", "10.42.7.19"),
        new("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        new("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        new("x-correlation-id", "job-31415926-42"),
        new("cache-control", "no-cache"),
        new("connection", "keep-alive"),
        new("via", "1.1 lb-eu-west-1a"),
        new("x-gitlab-job-name", "deploy:production"),
        authorization is null ? new("x-envoy-attempt-count", "1") : new("authorization", authorization),
    ];

    /// <summary>kong.request.get_headers as Kong answers it over ProtoBuf:1 (a Struct of string Values).</summary>
    public static byte[] PbHeadersReply(string? authorization)
    {
        var st = new Struct();
        foreach (var (k, v) in Headers(authorization)) st.Fields[k] = Value.ForString(v);
        return st.ToByteArray();
    }

    /// <summary>The same over MsgPack:1 (map of name to array of strings, lua-MessagePack style).</summary>
    public static byte[] MpHeadersReply(string? authorization)
    {
        var map = new Dictionary<string, object?>();
        foreach (var (k, v) in Headers(authorization)) map[k] = new List<object?> { v };
        return Kong.PluginServer.Testing.KongWire.EncodeMsgPack(map);
    }

    public static byte[] PbString(string s) => new Kong.PluginServer.Protocol.ProtoBuf.Messages.String { V = s }.ToByteArray();

    /// <summary>RpcCall{sequence, cmd_handle_event{instance_id, "access"}} as Kong sends it.</summary>
    public static byte[] HandleEventCall(long seq = 1234, int instance = 7) =>
        new RpcCall { Sequence = seq, CmdHandleEvent = new CmdHandleEvent { InstanceId = instance, EventName = "access" } }.ToByteArray();

    public static string GitLabConfigJson(int? cacheSize = null) =>
        "{\"issuer\":\"" + Issuer + "\",\"audiences\":[\"" + Audience + "\"],\"static_jwks\":" + System.Text.Json.JsonSerializer.Serialize(StaticJwks) + "," +
        (cacheSize is { } c ? "\"verified_token_cache_size\":" + c + "," : "") +
        """
        "rules":[{"name":"no-forks","effect":"deny","claims":{"project_path":["!acme/**"]}},{"name":"deploy-from-protected-main","claims":{"namespace_path":["acme/platform","acme/infra/*"],"ref":["main"],"ref_protected":["true"]}},{"name":"release-tags","claims":{"namespace_path":["acme/**"],"ref_type":["tag"],"ref":["re:v[0-9]+\\.[0-9]+\\.[0-9]+"]}}],"__seq__":1,"__plugin_id":"3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f","route_id":"7c1d3e5f-2a4b-4c6d-8e0f-1a2b3c4d5e6f"}
        """;
}

/// <summary>
/// An in-memory PDK transport: the real ProtoBuf:1 (or MsgPack:1) codec writes each call into an output buffer,
/// and "Kong" answers from canned reply bytes, so a handler runs exactly as over a socket minus the syscalls.
/// Mirrors ProtoBufConnection: calls are queued, a pull answers the queue in order, end marker + RpcReturn at the end.
/// </summary>
internal sealed class InMemorySession : PdkSession
{
    private readonly PdkCodec _codec;
    private readonly bool _protoBuf;
    private readonly OutputBuffer _output = new();
    private readonly Queue<(PdkMethod Method, PdkReplySink? Sink)> _awaiting = new();
    private readonly Func<PdkMethod, ReadOnlyMemory<byte>> _kong;
    private long _seq;

    public InMemorySession(bool protoBuf, Func<PdkMethod, ReadOnlyMemory<byte>> kong)
    {
        _protoBuf = protoBuf;
        _codec = protoBuf ? new global::Kong.PluginServer.Protocol.ProtoBuf.ProtoBufPdkCodec() : new global::Kong.PluginServer.Protocol.MsgPack.MsgPackPdkCodec();
        _kong = kong;
    }

    public override bool PullsReplies => true;
    public override WireProtocol Protocol => _protoBuf ? WireProtocol.ProtoBuf : WireProtocol.MsgPack;
    public int Writes { get; private set; }

    public void Begin() { BeginEvent(global::Kong.PluginServer.KongPhase.Access); Writes = 0; _seq++; }

    public override void Send(PdkMethod method, in PdkArgs args, PdkReplySink? sink)
    {
        if (Exited) throw new KongExitedException();
        _codec.WriteCall(_output, method, args);
        CallCount++;
        if (method.Return == PdkReturnKind.NoReply) { Exited = true; return; }
        _awaiting.Enqueue((method, sink));
    }

    public override void Pull(PdkReplySink sink)
    {
        if (_output.Length > 0) { Writes++; _output.Clear(); }
        while (!sink.IsCompleted)
        {
            var (m, s) = _awaiting.Dequeue();
            s?.Complete(_codec, _kong(m));
        }
    }

    /// <summary>End of the event: the end marker and RpcReturn leave with the last setters; their replies are drained.</summary>
    public void End()
    {
        if (_protoBuf && !Exited)
        {
            _output.WriteFrame(ReadOnlySpan<byte>.Empty);
            global::Kong.PluginServer.Protocol.ProtoBuf.RpcCodec.WriteReturn(_output, _seq);
        }
        Writes++;
        _output.Clear();
        while (_awaiting.TryDequeue(out var a)) a.Sink?.Complete(_codec, _kong(a.Method));
    }
}
