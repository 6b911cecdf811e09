using System.Text;

namespace GitLabCiAuth.Testing;

/// <summary>
/// Mints realistic GitLab CI ID tokens (RS256, kid = RFC 7638 thumbprint, <c>typ: JWT</c>) with the claim layout
/// of a real job (string ids, integer <c>runner_id</c>, "true"/"false" strings, nbf = iat - 5, exp = iat + 3600,
/// UUID jti), plus hostile variants. Bound to a <see cref="FakeGitLab"/> it always signs with the fake's
/// current CI key (so it follows <see cref="FakeGitLab.Rotate"/>).
/// </summary>
public sealed class TokenMinter
{
    private readonly Func<MinterKey> _ciKey;
    private readonly Func<MinterKey?> _userKey;
    private readonly TimeProvider _time;

    public TokenMinter(FakeGitLab gitLab, string audience = DefaultAudience, TimeProvider? timeProvider = null)
        : this(gitLab.Issuer, () => gitLab.CiKey, () => gitLab.UserOidcKey, audience, timeProvider)
    {
    }

    public TokenMinter(string issuer, MinterKey key, string audience = DefaultAudience, TimeProvider? timeProvider = null, MinterKey? userOidcKey = null)
        : this(issuer, () => key, () => userOidcKey, audience, timeProvider)
    {
    }

    private TokenMinter(string issuer, Func<MinterKey> ciKey, Func<MinterKey?> userKey, string audience, TimeProvider? timeProvider)
    {
        Issuer = issuer;
        Audience = audience;
        _ciKey = ciKey;
        _userKey = userKey;
        _time = timeProvider ?? TimeProvider.System;
    }

    public const string DefaultAudience = "https://api-gw.acme.example";

    public string Issuer { get; }
    public string Audience { get; }

    /// <summary>The key CI tokens are signed with right now.</summary>
    public MinterKey CurrentKey => _ciKey();

    /// <summary>A builder with a full CI claim set (job <c>deploy</c> on protected <c>main</c>, environment production).</summary>
    public TokenBuilder Ci(DateTimeOffset? issuedAt = null)
    {
        var host = new Uri(Issuer).Authority;
        var iat = (issuedAt ?? _time.GetUtcNow()).ToUnixTimeSeconds();
        var b = new TokenBuilder(CurrentKey)
            .Set("namespace_id", "4815")
            .Set("namespace_path", "acme/platform")
            .Set("project_id", "16234")
            .Set("project_path", "acme/platform/billing-api")
            .Set("user_id", "2718")
            .Set("user_login", "jdoe")
            .Set("user_email", "jdoe@acme.example")
            .Set("user_access_level", "maintainer")
            .Set("pipeline_id", "987654")
            .Set("pipeline_source", "push")
            .Set("job_id", "31415926")
            .Set("ref", "main")
            .Set("ref_type", "branch")
            .Set("ref_path", "refs/heads/main")
            .Set("ref_protected", "true")
            .Set("environment", "production")
            .Set("environment_protected", "true")
            .Set("deployment_tier", "production")
            .Set("environment_action", "start")
            .Set("runner_id", 5120)
            .Set("runner_environment", "self-hosted")
            .Set("sha", "3f2c9e1b7a4d5e6f8091a2b3c4d5e6f708192a3b")
            .Set("project_visibility", "private")
            .Set("ci_config_ref_uri", host + "/acme/platform/billing-api//.gitlab-ci.yml@refs/heads/main")
            .Set("ci_config_sha", "3f2c9e1b7a4d5e6f8091a2b3c4d5e6f708192a3b")
            .Set("jti", Guid.NewGuid().ToString())
            .Set("iss", Issuer)
            .Set("iat", iat)
            .Set("nbf", iat - 5)
            .Set("exp", iat + 3600)
            .Set("sub", "project_path:acme/platform/billing-api:ref_type:branch:ref:main")
            .Set("aud", Audience);
        return b;
    }

    /// <summary>Mints a CI token, optionally adjusted.</summary>
    public string Mint(Action<TokenBuilder>? configure = null)
    {
        var b = Ci();
        configure?.Invoke(b);
        return b.Build();
    }

    /// <summary><c>alg: none</c>, empty signature, otherwise a perfect CI token.</summary>
    public string AlgNone() => Ci().Algorithm("none").Build();

    /// <summary>The classic key-confusion attack: HS256, HMAC keyed with the public key's PEM bytes.</summary>
    public string Hs256WithPublicKey() =>
        Ci().Algorithm("HS256").HmacKey(Encoding.ASCII.GetBytes(CurrentKey.PublicKeyPem)).Build();

    /// <summary>Signed by a key the issuer never published, but claiming the current CI key's kid.</summary>
    public string SignedByUnknownKeyReusingKid() =>
        Ci().SignWith(s_outsider.Value).Header("kid", CurrentKey.Kid).Build();

    /// <summary>A CI token with a random kid (signed by a throwaway key).</summary>
    public string WithRandomKid() =>
        Ci().SignWith(s_outsider.Value).Header("kid", Guid.NewGuid().ToString("N")).Build();

    /// <summary>A key no issuer ever publishes (created once per process; RSA key generation is slow).</summary>
    public static MinterKey OutsiderKey => s_outsider.Value;

    private static readonly Lazy<MinterKey> s_outsider = new(() => MinterKey.CreateRsa(2048));

    /// <summary>
    /// A "Sign in with GitLab" user OIDC ID token: same issuer, signed by the instance's OIDC key (which is in the
    /// JWKS), aud set to our audience, but no CI claims.
    /// </summary>
    public TokenBuilder UserLogin(DateTimeOffset? issuedAt = null)
    {
        var key = _userKey() ?? throw new InvalidOperationException("no user OIDC key configured");
        var iat = (issuedAt ?? _time.GetUtcNow()).ToUnixTimeSeconds();
        return new TokenBuilder(key)
            .Set("iss", Issuer)
            .Set("sub", "2718")
            .Set("aud", Audience)
            .Set("exp", iat + 120)
            .Set("iat", iat)
            .Set("nonce", Guid.NewGuid().ToString("N"))
            .Set("auth_time", iat - 30)
            .Set("sub_legacy", "5f7e0c7c6a3d4b0f9e2b8c1d2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f")
            .Set("name", "Jane Doe")
            .Set("nickname", "jdoe")
            .Set("preferred_username", "jdoe")
            .Set("email", "jdoe@acme.example")
            .Set("email_verified", true)
            .Set("groups_direct", new[] { "acme/platform" });
    }

    public string UserLoginToken() => UserLogin().Build();
}
