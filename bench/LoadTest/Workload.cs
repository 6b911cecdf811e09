using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using GitLabCiAuth.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Testing;

namespace LoadTest;

public enum Proto { ProtoBuf, MsgPack }
public enum ServerKind { Ours, JsPdk }
public enum TokenMode { None, Warm, Cold, DenyMix }

/// <summary>One load-test scenario: which server, protocol and plugin, and what the requests carry.</summary>
public sealed record Scenario(string Name, ServerKind Server, Proto Protocol, string Plugin, TokenMode Tokens, string Description, double PacedRate = 0)
{
    public string ProtocolName => Protocol == Proto.ProtoBuf ? "ProtoBuf:1" : "MsgPack:1";

    public static readonly Scenario[] All =
    [
        new("example", ServerKind.Ours, Proto.ProtoBuf, "example", TokenMode.None, "protocol floor: read 2 headers, set 1 (3 PDK calls)"),
        new("warm", ServerKind.Ours, Proto.ProtoBuf, "gitlab-ci-auth", TokenMode.Warm, "one token reused: verified-token cache hits"),
        new("cold", ServerKind.Ours, Proto.ProtoBuf, "gitlab-ci-auth", TokenMode.Cold, "a fresh token every request: RS256 signature path"),
        new("deny", ServerKind.Ours, Proto.ProtoBuf, "gitlab-ci-auth", TokenMode.DenyMix, "80% rejected: policy denials, expired/forged/missing/garbage tokens"),
        new("example-msgpack", ServerKind.Ours, Proto.MsgPack, "example", TokenMode.None, "protocol floor over MsgPack:1"),
        new("warm-msgpack", ServerKind.Ours, Proto.MsgPack, "gitlab-ci-auth", TokenMode.Warm, "warm cache over MsgPack:1"),
        new("js-pdk", ServerKind.JsPdk, Proto.MsgPack, "example", TokenMode.None, "Kong's JS PDK (kong-pdk), same trivial plugin, MsgPack:1"),
        new("warm-paced", ServerKind.Ours, Proto.ProtoBuf, "gitlab-ci-auth", TokenMode.Warm, "warm at a fixed moderate rate (tail latency)", PacedRate: 2000),
        new("example-paced", ServerKind.Ours, Proto.ProtoBuf, "example", TokenMode.None, "protocol floor at the same moderate rate", PacedRate: 2000),
        new("example-msgpack-paced", ServerKind.Ours, Proto.MsgPack, "example", TokenMode.None, "protocol floor over MsgPack:1 at the moderate rate", PacedRate: 2000),
        new("js-pdk-paced", ServerKind.JsPdk, Proto.MsgPack, "example", TokenMode.None, "the JS PDK at the same moderate rate", PacedRate: 2000),
    ];

    public static Scenario Find(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown scenario '{name}' ({string.Join(", ", All.Select(s => s.Name))})");
}

/// <summary>The expected result of one request (checked for every event: a wrong answer is an error, not a data point).</summary>
public enum Expect { Allow, Reject401, Deny403 }

/// <summary>
/// One client request, with Kong's answers to the PDK calls pre-encoded for both protocols
/// (ProtoBuf messages, and lua-MessagePack values as Kong packs them).
/// </summary>
public sealed class RequestTemplate
{
    public required Expect Expect { get; init; }
    public required List<KeyValuePair<string, string>> Headers { get; init; }
    public string Method { get; init; } = "POST";
    public string Path { get; init; } = "/api/v1/deployments";

    // ProtoBuf:1 replies
    public byte[] PbHeaders = [];
    public byte[] PbMethod = [], PbPath = [];
    public (byte[] Name, byte[] Pb, byte[] Mp)[] Single = [];
    // MsgPack:1 replies (the Data value)
    public byte[] MpHeaders = [];
    public byte[] MpMethod = [], MpPath = [];

    public void Encode()
    {
        var st = new Struct();
        var grouped = Headers.GroupBy(h => h.Key.ToLowerInvariant()).ToList();
        var mp = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var g in grouped)
        {
            var values = g.Select(v => v.Value).ToList();
            st.Fields[g.Key] = values.Count == 1 ? Value.ForString(values[0]) : Value.ForList(values.Select(Value.ForString).ToArray());
            mp[g.Key] = values.Cast<object?>().ToList();
        }
        PbHeaders = st.ToByteArray();
        MpHeaders = KongWire.EncodeMsgPack(mp);
        PbMethod = PbString(Method);
        PbPath = PbString(Path);
        MpMethod = KongWire.EncodeMsgPack(Method);
        MpPath = KongWire.EncodeMsgPack(Path);
        Single = grouped.Select(g => (Encoding.ASCII.GetBytes(g.Key), PbString(g.First().Value), KongWire.EncodeMsgPack(g.First().Value))).ToArray();
    }

    private static byte[] PbString(string s) => new Kong.PluginServer.Protocol.ProtoBuf.Messages.String { V = s }.ToByteArray();

    /// <summary>Kong's get_header answer: the first value (case-insensitive name), or null when absent.</summary>
    public (byte[] Pb, byte[] Mp)? Find(ReadOnlySpan<byte> name)
    {
        foreach (var h in Single)
            if (AsciiEqualsIgnoreCase(h.Name, name)) return (h.Pb, h.Mp);
        return null;
    }

    private static bool AsciiEqualsIgnoreCase(ReadOnlySpan<byte> lower, ReadOnlySpan<byte> other)
    {
        if (lower.Length != other.Length) return false;
        for (int i = 0; i < lower.Length; i++)
        {
            byte c = other[i];
            if (c is >= (byte)'A' and <= (byte)'Z') c += 32;
            if (c != lower[i]) return false;
        }
        return true;
    }

    public SimRequest ToSimRequest()
    {
        var r = new SimRequest { Method = Method, Path = Path, Host = "api.acme.example" };
        foreach (var (k, v) in Headers) r.Headers.Add(k, v);
        return r;
    }
}

/// <summary>Builds the plugin configs and the request sets of the scenarios (tokens are minted before timing).</summary>
public sealed class Workload
{
    public const string Issuer = "https://gitlab.acme.example";
    public const string Audience = TokenMinter.DefaultAudience;

    private readonly MinterKey _key;
    private readonly TokenMinter _minter;

    public Workload()
    {
        _key = MinterKey.CreateRsa(2048);
        _minter = new TokenMinter(Issuer, _key, Audience);
        StaticJwks = MinterKey.JwksJson(_key);
    }

    public string StaticJwks { get; }
    public MinterKey Key => _key;

    public static string ExampleConfig => """{"request_header":"x-request-id","upstream_header":"x-example","greeting":"hello"}""";

    /// <summary>A production-like route config: static JWKS, a deny rule for forks, two allow rules (globs and a regex), defaults elsewhere.</summary>
    public string GitLabConfig()
    {
        var cfg = new Dictionary<string, object?>
        {
            ["issuer"] = Issuer,
            ["audiences"] = new[] { Audience },
            ["static_jwks"] = StaticJwks,
            ["rules"] = new object[]
            {
                new Dictionary<string, object?> { ["name"] = "no-forks", ["effect"] = "deny", ["claims"] = new Dictionary<string, object?> { ["project_path"] = new[] { "!acme/**" } } },
                new Dictionary<string, object?> { ["name"] = "deploy-from-protected-main", ["claims"] = new Dictionary<string, object?>
                    { ["namespace_path"] = new[] { "acme/platform", "acme/infra/*" }, ["ref"] = new[] { "main" }, ["ref_protected"] = new[] { "true" } } },
                new Dictionary<string, object?> { ["name"] = "release-tags", ["claims"] = new Dictionary<string, object?>
                    { ["namespace_path"] = new[] { "acme/**" }, ["ref_type"] = new[] { "tag" }, ["ref"] = new[] { "re:v[0-9]+\\.[0-9]+\\.[0-9]+" } } },
            },
        };
        return JsonSerializer.Serialize(cfg);
    }

    /// <summary>20 request headers, as a real CI client behind a load balancer sends them.</summary>
    public static List<KeyValuePair<string, string>> Headers(string? authorization, int n)
    {
        var h = new List<KeyValuePair<string, string>>
        {
            new("host", "api.acme.example"),
            new("user-agent", "curl/8.5.0 gitlab-runner/17.4.0 (linux; amd64)"),
            new("accept", "application/json"),
            new("accept-encoding", "gzip, deflate, br"),
            new("accept-language", "en-US,en;q=0.9"),
            new("content-type", "application/json"),
            new("content-length", "187"),
            new("x-request-id", $"4f9d{n:x8}-8a3c-4b1e-9f2d-2c7e5a1b0d3f"),
            new("x-forwarded-for", "10.42.7.19, 10.0.0.5"),
            new("x-forwarded-proto", "https"),
            new("x-forwarded-host", "api.acme.example"),
            new("x-real-ip", "10.42.7.19"),
            new("traceparent", $"00-4bf92f3577b34da6a3ce929d0e0e{n:x4}-00f067aa0ba902b7-01"),
            new("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            new("x-correlation-id", $"job-31415926-{n}"),
            new("cache-control", "no-cache"),
            new("connection", "keep-alive"),
            new("via", "1.1 lb-eu-west-1a"),
            new("x-gitlab-job-name", "deploy:production"),
        };
        h.Add(authorization is null ? new("x-envoy-attempt-count", "1") : new("authorization", authorization));
        return h;
    }

    private static RequestTemplate Make(string? token, Expect expect, int n, string? rawAuthorization = null)
    {
        var r = new RequestTemplate { Expect = expect, Headers = Headers(rawAuthorization ?? (token is null ? null : "Bearer " + token), n) };
        r.Encode();
        return r;
    }

    public RequestTemplate[] Example(int count = 64)
    {
        var list = new RequestTemplate[count];
        for (int i = 0; i < count; i++) list[i] = Make(null, Expect.Allow, i);
        return list;
    }

    /// <summary>One token, reused by every request (different request ids).</summary>
    public RequestTemplate[] Warm(int count = 64)
    {
        var token = _minter.Mint();
        var list = new RequestTemplate[count];
        for (int i = 0; i < count; i++) list[i] = Make(token, Expect.Allow, i);
        return list;
    }

    /// <summary><paramref name="count"/> distinct tokens (distinct jti), minted in parallel.</summary>
    public RequestTemplate[] Cold(int count)
    {
        var list = new RequestTemplate[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            i => list[i] = Make(_minter.Mint(), Expect.Allow, i));
        return list;
    }

    /// <summary>
    /// A deny-heavy cycle of 10: 2 allowed, 2 denied by the deny rule (a fork), 2 matching no allow rule (feature
    /// branch), 1 expired, 1 forged (an outsider key reusing the real kid: a full RSA verify that fails), 1 missing
    /// token, 1 garbage token. Every request's expected status is checked.
    /// </summary>
    public RequestTemplate[] Deny(int cycles = 8)
    {
        var good = _minter.Mint();
        var fork = _minter.Mint(b => b.Set("project_path", "mallory/billing-api").Set("namespace_path", "mallory"));
        var feature = _minter.Mint(b => b.Set("ref", "feature/x").Set("ref_path", "refs/heads/feature/x").Set("ref_protected", "false"));
        var expired = _minter.Ci(DateTimeOffset.UtcNow.AddHours(-3)).Build();
        var forged = _minter.SignedByUnknownKeyReusingKid();
        var list = new List<RequestTemplate>();
        int n = 0;
        for (int c = 0; c < cycles; c++)
        {
            list.Add(Make(good, Expect.Allow, n++));
            list.Add(Make(fork, Expect.Deny403, n++));
            list.Add(Make(feature, Expect.Deny403, n++));
            list.Add(Make(expired, Expect.Reject401, n++));
            list.Add(Make(good, Expect.Allow, n++));
            list.Add(Make(forged, Expect.Reject401, n++));
            list.Add(Make(fork, Expect.Deny403, n++));
            list.Add(Make(null, Expect.Reject401, n++));
            list.Add(Make(feature, Expect.Deny403, n++));
            list.Add(Make(null, Expect.Reject401, n++, rawAuthorization: "Bearer not.a.jwt"));
        }
        return list.ToArray();
    }

    /// <summary>
    /// One RS256 verification (SHA-256 + RSA-2048 public op), median cost in microseconds, measured here: as the
    /// server verifies (OpenSSL's EVP_PKEY_verify on a prepared context, when available) and through .NET's RSA.
    /// </summary>
    public (double Server, double DotNet) MeasureRsaVerifyMicros(int ops = 3000)
    {
        var token = _minter.Mint();
        int d2 = token.LastIndexOf('.');
        var input = Encoding.ASCII.GetBytes(token[..d2]);
        var sig = System.Buffers.Text.Base64Url.DecodeFromChars(token[(d2 + 1)..]);
        using var rsa = System.Security.Cryptography.RSA.Create();
        var p = _key.Rsa!.ExportParameters(false);
        rsa.ImportParameters(p);
        var direct = GitLabCiAuth.Keys.OpenSslRs256.Create(p.Modulus!, p.Exponent!);
        bool DotNet() => rsa.VerifyData(input, sig, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        bool Direct() => direct!.VerifyData(input, sig);
        double dotnet = Median(DotNet, ops);
        return (direct is null ? dotnet : Median(Direct, ops), dotnet);
    }

    private static double Median(Func<bool> verify, int ops)
    {
        var samples = new double[ops];
        for (int i = 0; i < 200; i++) verify();
        for (int i = 0; i < ops; i++)
        {
            long t = System.Diagnostics.Stopwatch.GetTimestamp();
            if (!verify()) throw new InvalidOperationException("verify failed");
            samples[i] = System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }
        Array.Sort(samples);
        return samples[ops / 2];
    }
}

