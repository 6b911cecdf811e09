using GitLabCiAuth.Testing;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Tokens;

public sealed class TokenValidationOptionsTests
{
    private static TokenValidationOptions Valid() => new()
    {
        Issuer = "https://gitlab.example.com",
        Audiences = ["https://api.example.com"],
    };

    [Fact]
    public void Defaults_match_the_contract()
    {
        var o = Valid();
        o.Validate();
        Assert.Equal(["RS256"], o.Algorithms);
        Assert.Equal(60, o.ClockSkewSeconds);
        Assert.Equal(0, o.MaxTokenAgeSeconds);
        Assert.Equal(["project_id", "namespace_id", "pipeline_id", "job_id", "runner_id", "ref", "ref_type"], o.RequiredClaims);
        Assert.Equal("authorization", o.TokenHeader);
        Assert.Equal(8192, o.MaxTokenBytes);
        Assert.Equal(3600, o.JwksRefreshSeconds);
        Assert.Equal(30, o.JwksRefetchCooldownSeconds);
        Assert.Equal(86400, o.JwksStaleSeconds);
        Assert.Equal(2000, o.JwksFetchTimeoutMs);
        Assert.False(o.AllowInsecureHttp);
        Assert.Equal(10000, o.VerifiedTokenCacheSize);
        Assert.Equal("https://gitlab.example.com/.well-known/openid-configuration", o.DiscoveryUrl);
    }

    public static TheoryData<string, Action<TokenValidationOptions>, string> Invalid => new()
    {
        { "audiences", o => o.Audiences = [], "audiences: at least one audience is required" },
        { "audiences", o => o.Audiences = [""], "audiences: an audience must not be empty" },
        { "issuer", o => o.Issuer = "", "issuer: is required" },
        { "issuer", o => o.Issuer = "https://gitlab.example.com/", "issuer: must not end with '/'" },
        { "issuer", o => o.Issuer = "gitlab.example.com", "issuer: must be an absolute https:// URL" },
        { "issuer", o => o.Issuer = "http://gitlab.example.com", "issuer: http:// is refused (set allow_insecure_http to allow it)" },
        { "jwks_uri", o => o.JwksUri = "http://gitlab.example.com/oauth/discovery/keys", "jwks_uri: http:// is refused (set allow_insecure_http to allow it)" },
        { "jwks_uri", o => o.JwksUri = "/oauth/discovery/keys", "jwks_uri: must be an absolute https:// URL" },
        { "algorithms", o => o.Algorithms = ["none"], "algorithms: 'none' can never be allowed" },
        { "algorithms", o => o.Algorithms = ["RS256", "HS256"], "algorithms: 'HS256' can never be allowed" },
        { "algorithms", o => o.Algorithms = ["EdDSA"], "algorithms: 'EdDSA' is not supported (allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)" },
        { "algorithms", o => o.Algorithms = [], "algorithms: at least one algorithm is required" },
        { "clock_skew_seconds", o => o.ClockSkewSeconds = -1, "clock_skew_seconds: must be between 0 and 600" },
        { "max_token_age_seconds", o => o.MaxTokenAgeSeconds = -5, "max_token_age_seconds: must be between 0 and 604800" },
        { "required_claims", o => o.RequiredClaims = ["job_id", " "], "required_claims: a claim name must not be empty" },
        { "token_header", o => o.TokenHeader = "bad header", "token_header: is not a valid header name" },
        { "max_token_bytes", o => o.MaxTokenBytes = 10, "max_token_bytes: must be between 256 and 65536" },
        { "jwks_stale_seconds", o => o.JwksStaleSeconds = 60, "jwks_stale_seconds: must be at least jwks_refresh_seconds" },
        { "jwks_refetch_cooldown_seconds", o => o.JwksRefetchCooldownSeconds = 0, "jwks_refetch_cooldown_seconds: must be between 1 and 3600" },
        { "jwks_fetch_timeout_ms", o => o.JwksFetchTimeoutMs = 0, "jwks_fetch_timeout_ms: must be between 100 and 60000" },
        { "verified_token_cache_size", o => o.VerifiedTokenCacheSize = -1, "verified_token_cache_size: must be between 0 and 1000000" },
        { "static_jwks", o => o.StaticJwks = "{\"keys\":[]}", "static_jwks: the key set has no usable signing key" },
        { "static_jwks", o => o.StaticJwks = "not json", "static_jwks: the key set is not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_options_name_the_field(string field, Action<TokenValidationOptions> mutate, string message)
    {
        var o = Valid();
        mutate(o);

        var e = Assert.Throws<TokenOptionsException>(o.Validate);

        Assert.Equal(field, e.Field);
        Assert.StartsWith(message, e.Message);
        Assert.False(o.TryValidate(out var error));
        Assert.StartsWith(field + ":", error);
    }

    [Fact]
    public void Insecure_http_can_be_allowed_explicitly()
    {
        var o = Valid();
        o.Issuer = "http://gitlab.lab";
        o.AllowInsecureHttp = true;
        Assert.True(o.TryValidate(out var error), error);
    }

    [Fact]
    public void Static_jwks_with_a_usable_key_is_valid()
    {
        using var k = MinterKey.CreateRsa();
        var o = Valid();
        o.StaticJwks = MinterKey.JwksJson(k);
        o.Validate();
    }

    [Fact]
    public void Validator_constructor_validates()
    {
        var o = Valid();
        o.Audiences = [];
        var e = Assert.Throws<TokenOptionsException>(() => new GitLabTokenValidator(o, new GitLabCiAuth.Keys.JwksKeyStore()));
        Assert.Equal("audiences: at least one audience is required", e.Message);
    }

    [Fact]
    public void Several_issuers_are_checked_record_by_record()
    {
        var o = Valid();
        o.Issuers = [new IssuerOptions { Issuer = "https://gitlab.com", Audiences = ["https://api.saas.example"] }];
        o.Validate();
        Assert.Equal(["https://gitlab.example.com", "https://gitlab.com"], o.EffectiveIssuers.Select(i => i.Issuer));
        Assert.Equal(["https://api.example.com"], o.EffectiveIssuers[0].Audiences!);
        Assert.Equal(["https://api.saas.example"], o.EffectiveIssuers[1].Audiences!);

        string Error(Action<TokenValidationOptions> edit)
        {
            var x = Valid();
            edit(x);
            return Assert.Throws<TokenOptionsException>(x.Validate).Message;
        }
        Assert.StartsWith("issuers[0].issuer: 'https://gitlab.example.com' is accepted twice",
            Error(x => x.Issuers = [new IssuerOptions { Issuer = "https://gitlab.example.com" }]));
        Assert.StartsWith("issuers[0].issuer: http:// is refused", Error(x => x.Issuers = [new IssuerOptions { Issuer = "http://gitlab.com" }]));
        Assert.StartsWith("issuers[0].static_jwks: set either", Error(x => x.Issuers =
            [new IssuerOptions { Issuer = "https://gitlab.com", JwksUri = "https://gitlab.com/k", StaticJwks = "{}" }]));
        Assert.StartsWith("audiences: at least one audience is required (issuers[1] has none of its own)", Error(x =>
        {
            x.Issuer = "";
            x.Audiences = [];
            x.Issuers = [new IssuerOptions { Issuer = "https://a.example", Audiences = ["x"] }, new IssuerOptions { Issuer = "https://b.example" }];
        }));
        Assert.StartsWith("jwks_uri: is the key source of issuer, which is not set", Error(x =>
        {
            x.Issuer = "";
            x.JwksUri = "https://gitlab.com/k";
            x.Issuers = [new IssuerOptions { Issuer = "https://gitlab.com" }];
        }));
        Assert.StartsWith("issuer: is required (or list issuers)", Error(x => x.Issuer = ""));
    }
}
