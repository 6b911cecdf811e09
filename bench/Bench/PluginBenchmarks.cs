using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using GitLabCiAuth.Claims;
using GitLabCiAuth.Identity;
using GitLabCiAuth.Plugin;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;
using Kong.PluginServer;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Protocol.ProtoBuf;

namespace Bench;

/// <summary>Token verification through GitLabTokenValidator with static_jwks: cold (full signature path) and warm (cache hit).</summary>
[MemoryDiagnoser]
public class TokenBenchmarks
{
    private GitLabTokenValidator _warm = null!, _cold = null!;
    private byte[] _header = [];
    private byte[] _signingInput = [], _signature = [];
    private RSA _rsa = null!;
    private GitLabCiAuth.Keys.OpenSslRs256 _direct = null!;

    private static TokenValidationOptions Options(int cache) => new()
    {
        Issuer = Fixtures.Issuer,
        Audiences = [Fixtures.Audience],
        StaticJwks = Fixtures.StaticJwks,
        VerifiedTokenCacheSize = cache,
    };

    [GlobalSetup]
    public void Setup()
    {
        var token = Fixtures.Minter.Mint();
        _header = Encoding.ASCII.GetBytes("Bearer " + token);
        _warm = new GitLabTokenValidator(Options(10_000));
        _cold = new GitLabTokenValidator(Options(0)); // cache disabled: every call takes the signature path
        if (!_warm.ValidateAsync(_header.AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        if (!_cold.ValidateAsync(_header.AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        int d2 = token.LastIndexOf('.');
        _signingInput = Encoding.ASCII.GetBytes(token[..d2]);
        _signature = System.Buffers.Text.Base64Url.DecodeFromChars(token[(d2 + 1)..]);
        _rsa = RSA.Create();
        _rsa.ImportParameters(Fixtures.Key.Rsa!.ExportParameters(false));
        var p = _rsa.ExportParameters(false);
        _direct = GitLabCiAuth.Keys.OpenSslRs256.Create(p.Modulus!, p.Exponent!) ?? throw new InvalidOperationException("no direct RS256 path here");
    }

    [GlobalCleanup]
    public void Cleanup() { _warm.Dispose(); _cold.Dispose(); _rsa.Dispose(); }

    /// <summary>SHA-256 + one RSA-2048 public operation (PKCS#1 v1.5) through .NET's RSA, as Microsoft.IdentityModel verifies.</summary>
    [Benchmark(Baseline = true)]
    public bool Rs256VerifyOnly() => _rsa.VerifyData(_signingInput, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    /// <summary>What the validator does for RS256: SHA-256, then OpenSSL's EVP_PKEY_verify on a context prepared once per key.</summary>
    [Benchmark]
    public bool Rs256Direct() => _direct.VerifyData(_signingInput, _signature);

    [Benchmark]
    public bool Cold_SignaturePath() => _cold.ValidateAsync(_header.AsSpan()).GetAwaiter().GetResult().IsValid;

    [Benchmark]
    public bool Warm_CacheHit() => _warm.ValidateAsync(_header.AsSpan()).GetAwaiter().GetResult().IsValid;
}

/// <summary>Policy evaluation over N rules (deny rules, then allow rules; globs and regexes; the last allow rule matches).</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    [Params(1, 10, 100)]
    public int Rules;

    private CompiledPolicy _policy = null!;
    private ClaimSet _claims = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rules = new List<RuleConfig>();
        for (int i = 0; i < Rules - 1; i++)
        {
            rules.Add((i % 4) switch
            {
                0 => new RuleConfig { Name = $"deny-{i}", Effect = "deny", Claims = new() { ["project_path"] = [$"evil-{i}/**", $"re:mallory-{i}/.*"] } },
                1 => new RuleConfig { Name = $"team-{i}", Claims = new() { ["namespace_path"] = [$"team-{i}/*"], ["ref"] = ["main"] } },
                2 => new RuleConfig { Name = $"hotfix-{i}", Claims = new() { ["ref"] = [$"re:hotfix-{i}-[a-z0-9]+"], ["ref_protected"] = ["true"] } },
                _ => new RuleConfig { Name = $"env-{i}", Claims = new() { ["environment"] = [$"staging-{i}", "review/*"], ["namespace_path"] = ["acme/**"] } },
            });
        }
        rules.Add(new RuleConfig
        {
            Name = "deploy-from-protected-main",
            Claims = new() { ["namespace_path"] = ["acme/platform", "acme/infra/*"], ["project_path"] = ["acme/**/billing-*"], ["ref"] = ["main", "re:v[0-9]+\\.[0-9]+\\.[0-9]+"], ["ref_protected"] = ["true"] },
        });
        _policy = PolicyCompiler.Compile(rules);
        _claims = PayloadClaims(Fixtures.Minter.Mint());
        var d = _policy.Evaluate(_claims);
        if (!d.Allowed || d.Rule != "deploy-from-protected-main") throw new InvalidOperationException("unexpected decision " + d.Rule);
    }

    internal static ClaimSet PayloadClaims(string token)
    {
        var parts = token.Split('.');
        return ClaimSet.FromJson(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]));
    }

    [Benchmark]
    public bool Evaluate() => _policy.Evaluate(_claims).Allowed;
}

/// <summary>Identity enrichment: the header-value check, the set_headers map, the log record, the spoofed-header scan.</summary>
[MemoryDiagnoser]
public class IdentityBenchmarks
{
    private readonly OutputBuffer _out = new();
    private readonly ProtoBufPdkCodec _codec = new();
    private IdentityHeaders _headers = null!;
    private ClaimSet _claims = null!;
    private KongHeaderView _view;
    private ProtectedHeaders _protected = null!;
    private string[] _values = [];

    [GlobalSetup]
    public void Setup()
    {
        var map = JsonSerializer.Deserialize<Dictionary<string, string>>(GitLabCiAuthSchema.DefaultUpstreamHeadersJson)!;
        _headers = new IdentityHeaders(map);
        _protected = new ProtectedHeaders(_headers.Names.Concat(KongConsumerHeaders.All));
        var token = Fixtures.Minter.Mint();
        _claims = PolicyBenchmarks.PayloadClaims(token);
        _view = new KongHeaderView(_codec, Fixtures.PbHeadersReply("Bearer " + token));
        _values = _headers.Mapping.Select(m => _claims.GetString(m.Claim) ?? "").ToArray();
    }

    [Benchmark]
    public int HeaderSafe_11Values()
    {
        int n = 0;
        foreach (var v in _values) if (ClaimText.IsHeaderSafe(v)) n++;
        return n;
    }

    /// <summary>UpstreamIdentity.Build (identity + consumer headers) written as kong.service.request.set_headers with the ProtoBuf value writer.</summary>
    [Benchmark]
    public int UpstreamIdentity_SetHeaders_ProtoBuf()
    {
        var identity = UpstreamIdentity.Build(_headers, _claims, null, "gitlab-project-16234", anonymous: false, consumerHeaders: true);
        _codec.WriteCall(_out, PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: identity));
        int n = _out.Length;
        _out.Clear();
        return n;
    }

    /// <summary>The audit record (kong.log.set_serialize_value) written with the ProtoBuf value writer.</summary>
    [Benchmark]
    public int AuditRecord_ProtoBuf()
    {
        var record = new AuditRecord { Claims = _claims, Jti = "5d1f7a9e-3c2b-4e8f-9a1d-7b6c5e4f3a2b", TokenHash = "0123456789ab", Decision = "allow", Rule = "deploy-from-protected-main", Mode = "enforce" };
        _codec.WriteCall(_out, PdkMethods.LogSetSerializeValue, PdkArgs.KV("gitlab_ci", record));
        int n = _out.Length;
        _out.Clear();
        return n;
    }

    /// <summary>One walk over the request's 20 headers: lines, token header count, protected names sent.</summary>
    [Benchmark]
    public int ScanSentHeaders()
    {
        var sent = _protected.Scan(_view, "authorization"u8);
        return sent.Lines + sent.TokenCount + (sent.Protected?.Count ?? 0);
    }
}

/// <summary>
/// The whole access handler over an in-memory transport (<see cref="InMemorySession"/>): the real plugin, the real
/// codec and PendingCall machinery; "Kong" answers from canned bytes. The RpcCall is decoded and the end marker and
/// RpcReturn are encoded as ProtoBufConnection does. Socket syscalls and thread hand-offs are not included (the load
/// test has them).
/// </summary>
[MemoryDiagnoser]
public class AccessHandlerBenchmarks
{
    private IPluginHandler _gitlab = null!, _gitlabCold = null!, _example = null!;
    private InMemorySession _pbWarm = null!, _pbCold = null!, _pbDeny = null!, _pbExample = null!, _mpWarm = null!;
    private byte[] _call = [];
    private bool _flip;

    [GlobalSetup]
    public void Setup()
    {
        _call = Fixtures.HandleEventCall();
        var plugin = new GitLabCiAuthPlugin();
        _gitlab = plugin.CreateHandler(Encoding.UTF8.GetBytes(Fixtures.GitLabConfigJson()));
        _gitlabCold = plugin.CreateHandler(Encoding.UTF8.GetBytes(Fixtures.GitLabConfigJson(cacheSize: 1)));
        _example = new ExampleTwin();

        var good = Fixtures.Minter.Mint();
        var good2 = Fixtures.Minter.Mint();
        var fork = Fixtures.Minter.Mint(b => b.Set("project_path", "mallory/billing-api").Set("namespace_path", "mallory"));
        var pbGood = Fixtures.PbHeadersReply("Bearer " + good);
        var pbGood2 = Fixtures.PbHeadersReply("Bearer " + good2);
        var pbFork = Fixtures.PbHeadersReply("Bearer " + fork);
        var mpGood = Fixtures.MpHeadersReply("Bearer " + good);
        var pbHeader = Fixtures.PbString("4f9d0000002a-8a3c-4b1e-9f2d-2c7e5a1b0d3f");
        ReadOnlyMemory<byte> empty = ReadOnlyMemory<byte>.Empty;

        _pbWarm = new InMemorySession(true, m => m == PdkMethods.RequestGetHeaders ? pbGood : empty);
        // two tokens alternating through a verified-token cache of 1: every event misses (signature path)
        _pbCold = new InMemorySession(true, m => m == PdkMethods.RequestGetHeaders ? ((_flip = !_flip) ? pbGood : pbGood2) : empty);
        _pbDeny = new InMemorySession(true, m => m == PdkMethods.RequestGetHeaders ? pbFork : empty);
        _pbExample = new InMemorySession(true, m => m == PdkMethods.RequestGetHeader ? pbHeader : empty);
        _mpWarm = new InMemorySession(false, m => m == PdkMethods.RequestGetHeaders ? mpGood : empty);

        foreach (var (h, s, exited) in new[] { (_gitlab, _pbWarm, false), (_gitlabCold, _pbCold, false), (_gitlab, _pbDeny, true), (_example, _pbExample, false), (_gitlab, _mpWarm, false) })
        {
            Run(h, s);
            if (s.Exited != exited) throw new InvalidOperationException("unexpected outcome in setup");
        }
    }

    private int Run(IPluginHandler handler, InMemorySession s)
    {
        var cmd = RpcCodec.DecodeCall(_call);
        s.Begin();
        var t = handler.HandleAsync(KongPhase.Access, s.Kong);
        if (!t.IsCompletedSuccessfully) t.AsTask().GetAwaiter().GetResult();
        s.End();
        return s.CallCount + (int)cmd.Sequence;
    }

    [Benchmark(Baseline = true)]
    public int Example_ProtoBuf() => Run(_example, _pbExample);

    [Benchmark]
    public int GitLab_Warm_ProtoBuf() => Run(_gitlab, _pbWarm);

    [Benchmark]
    public int GitLab_Cold_ProtoBuf() => Run(_gitlabCold, _pbCold);

    [Benchmark]
    public int GitLab_PolicyDeny_ProtoBuf() => Run(_gitlab, _pbDeny);

    [Benchmark]
    public int GitLab_Warm_MsgPackCodec() => Run(_gitlab, _mpWarm);

    /// <summary>The same handler as `gitlab-ci-auth --plugin example` (samples/Example/Example/ExamplePlugin.cs).</summary>
    private sealed class ExampleTwin : PluginHandler
    {
        public override async ValueTask AccessAsync(KongPdk kong)
        {
            var id = kong.Request.GetHeaderAsync("x-request-id");
            var host = kong.Request.GetHeaderAsync("host");
            string value = await id;
            if (value == "deny")
            {
                await kong.Response.ExitAsync(403, """{"message":"denied by example"}""");
                return;
            }
            await kong.ServiceRequest.SetHeaderAsync("x-example", $"hello {value}@{await host}");
        }
    }
}
