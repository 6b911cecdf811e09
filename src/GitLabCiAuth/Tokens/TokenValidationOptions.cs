using GitLabCiAuth.Claims;
using GitLabCiAuth.Keys;
using Kong.PluginServer.Plugins;
using S = GitLabCiAuth.Plugin.GitLabCiAuthConfig.Fields;

namespace GitLabCiAuth.Tokens;

/// <summary>
/// The token-validation part of the plugin's configuration (public contract; the plugin maps Kong's
/// snake_case config onto these properties, the snake_case names are used in validation messages).
/// Defaults and ranges are read from the config's field declarations (<see cref="S"/>), never repeated here.
/// </summary>
public sealed class TokenValidationOptions
{
    public static readonly IReadOnlyList<string> DefaultRequiredClaims = S.RequiredClaims.StringListDefault;

    public static readonly IReadOnlyList<string> DefaultAlgorithms = S.Algorithms.StringListDefault;

    /// <summary>issuer: exact expected <c>iss</c> (no trailing slash); may be empty when <see cref="Issuers"/> lists some.</summary>
    public string Issuer { get; set; } = "";

    /// <summary>issuers: more accepted issuers, each with its own key source and optionally its own audiences.</summary>
    public IReadOnlyList<IssuerOptions> Issuers { get; set; } = [];

    /// <summary>audiences: the token's <c>aud</c> (string or array) must contain one of these (unless its issuer has its own).</summary>
    public IReadOnlyList<string> Audiences { get; set; } = [];

    /// <summary>
    /// Every accepted issuer: <see cref="Issuer"/> (with <see cref="JwksUri"/>/<see cref="StaticJwks"/>) first when set,
    /// then <see cref="Issuers"/>; each with the audiences its tokens must carry.
    /// </summary>
    public IReadOnlyList<IssuerOptions> EffectiveIssuers
    {
        get
        {
            var all = new List<IssuerOptions>(Issuers.Count + 1);
            if (!string.IsNullOrEmpty(Issuer))
                all.Add(new IssuerOptions { Issuer = Issuer, JwksUri = JwksUri, StaticJwks = StaticJwks, Audiences = Audiences });
            foreach (var i in Issuers)
                all.Add(i.Audiences is { Count: > 0 } ? i : i with { Audiences = Audiences });
            return all;
        }
    }

    /// <summary>jwks_uri: where to fetch keys; null = discover from <c>{issuer}/.well-known/openid-configuration</c>.</summary>
    public string? JwksUri { get; set; }

    /// <summary>static_jwks: inline JWKS JSON; when set nothing is fetched.</summary>
    public string? StaticJwks { get; set; }

    /// <summary>algorithms: allowed JWS algorithms (RS/PS/ES 256/384/512). <c>none</c> and HS* are never allowed.</summary>
    public IReadOnlyList<string> Algorithms { get; set; } = DefaultAlgorithms;

    public int ClockSkewSeconds { get; set; } = S.ClockSkewSeconds.IntegerDefault;

    /// <summary>max_token_age_seconds: reject when <c>iat</c> is older than this; 0 = off.</summary>
    public int MaxTokenAgeSeconds { get; set; } = S.MaxTokenAgeSeconds.IntegerDefault;

    /// <summary>required_claims: must be present and non-empty.</summary>
    public IReadOnlyList<string> RequiredClaims { get; set; } = DefaultRequiredClaims;

    /// <summary>token_header: the request header carrying the token (<c>Bearer &lt;jwt&gt;</c>).</summary>
    public string TokenHeader { get; set; } = S.TokenHeader.StringDefault;

    /// <summary>max_token_bytes: larger tokens are rejected before any parsing.</summary>
    public int MaxTokenBytes { get; set; } = S.MaxTokenBytes.IntegerDefault;

    public int JwksRefreshSeconds { get; set; } = S.JwksRefreshSeconds.IntegerDefault;
    public int JwksRefetchCooldownSeconds { get; set; } = S.JwksRefetchCooldownSeconds.IntegerDefault;
    public int JwksStaleSeconds { get; set; } = S.JwksStaleSeconds.IntegerDefault;

    /// <summary>jwks_fetch_timeout_ms: bound on one fetch (discovery + keys), wall clock.</summary>
    public int JwksFetchTimeoutMs { get; set; } = S.JwksFetchTimeoutMs.IntegerDefault;

    /// <summary>jwks_ca_file: extra CA bundle (PEM) trusted for the key endpoints, on top of the system roots.</summary>
    public string? JwksCaFile { get; set; }

    /// <summary>allow_insecure_http: allow http:// issuer / jwks_uri (tests, labs). Off by default.</summary>
    public bool AllowInsecureHttp { get; set; } = S.AllowInsecureHttp.BooleanDefault;

    /// <summary>The claims kept with a verified (and cached) token: those the route's config reads; null keeps all.</summary>
    public RetainedClaims? RetainedClaims { get; set; }

    /// <summary>verified_token_cache_size: LRU capacity of the verified-token cache; 0 disables it.</summary>
    public int VerifiedTokenCacheSize { get; set; } = S.VerifiedTokenCacheSize.IntegerDefault;

    /// <summary>Throws <see cref="TokenOptionsException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (!TryValidate(out var error)) throw new TokenOptionsException(error!);
    }

    /// <summary>Returns false and a message of the form <c>field: problem</c> when the options are invalid.</summary>
    public bool TryValidate(out string? error)
    {
        error = Check();
        return error is null;
    }

    private string? Check()
    {
        // issuers: the top-level issuer and every issuers[] record, each with its own key source
        if (string.IsNullOrWhiteSpace(Issuer) && Issuers.Count == 0) return "issuer: is required (or list issuers)";
        if (!string.IsNullOrEmpty(Issuer) && CheckIssuer("", Issuer, JwksUri, StaticJwks) is { } top) return top;
        if (JwksUri is not null && string.IsNullOrEmpty(Issuer)) return "jwks_uri: is the key source of issuer, which is not set";
        if (StaticJwks is not null && string.IsNullOrEmpty(Issuer)) return "static_jwks: is the key source of issuer, which is not set";
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (!string.IsNullOrEmpty(Issuer)) seen.Add(Issuer);
        for (int i = 0; i < Issuers.Count; i++)
        {
            var record = Issuers[i];
            string at = $"issuers[{i}].";
            if (record is null) return $"issuers[{i}]: must not be null";
            if (string.IsNullOrWhiteSpace(record.Issuer)) return at + "issuer: is required";
            if (CheckIssuer(at, record.Issuer, record.JwksUri, record.StaticJwks) is { } bad) return bad;
            if (!seen.Add(record.Issuer)) return at + $"issuer: '{record.Issuer}' is accepted twice (each issuer once, in issuer or issuers)";
            if (record.Audiences is not null)
                foreach (var a in record.Audiences)
                    if (string.IsNullOrWhiteSpace(a)) return at + "audiences: an audience must not be empty";
        }

        // audiences: the route's, for every issuer without its own
        foreach (var a in Audiences ?? [])
            if (string.IsNullOrWhiteSpace(a)) return "audiences: an audience must not be empty";
        if (Audiences is null || Audiences.Count == 0)
        {
            if (!string.IsNullOrEmpty(Issuer)) return "audiences: at least one audience is required";
            for (int i = 0; i < Issuers.Count; i++)
                if (Issuers[i].Audiences is not { Count: > 0 })
                    return $"audiences: at least one audience is required (issuers[{i}] has none of its own)";
        }

        // algorithms
        if (Algorithms is null || Algorithms.Count == 0) return "algorithms: at least one algorithm is required";
        foreach (var a in Algorithms)
        {
            if (a is null) return "algorithms: must not contain null";
            if (string.Equals(a, "none", StringComparison.OrdinalIgnoreCase) || a.StartsWith("HS", StringComparison.OrdinalIgnoreCase))
                return $"algorithms: '{a}' can never be allowed";
            if (!JwsAlgorithms.TryParse(a, out _))
                return $"algorithms: '{a}' is not supported (allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)";
        }

        if (OutOfRange(S.ClockSkewSeconds, ClockSkewSeconds) is { } skew) return skew;
        if (OutOfRange(S.MaxTokenAgeSeconds, MaxTokenAgeSeconds) is { } age) return age;

        if (RequiredClaims is null) return "required_claims: must not be null";
        foreach (var c in RequiredClaims)
            if (string.IsNullOrWhiteSpace(c)) return "required_claims: a claim name must not be empty";

        if (string.IsNullOrWhiteSpace(TokenHeader)) return "token_header: is required";
        foreach (var ch in TokenHeader)
            if (!IsTokenChar(ch)) return "token_header: is not a valid header name";

        if (OutOfRange(S.MaxTokenBytes, MaxTokenBytes) is { } bytes) return bytes;
        if (OutOfRange(S.JwksRefreshSeconds, JwksRefreshSeconds) is { } refresh) return refresh;
        if (OutOfRange(S.JwksRefetchCooldownSeconds, JwksRefetchCooldownSeconds) is { } cooldown) return cooldown;
        if (OutOfRange(S.JwksStaleSeconds, JwksStaleSeconds) is { } stale) return stale;
        if (JwksStaleSeconds < JwksRefreshSeconds) return "jwks_stale_seconds: must be at least jwks_refresh_seconds";
        if (OutOfRange(S.JwksFetchTimeoutMs, JwksFetchTimeoutMs) is { } timeout) return timeout;
        if (JwksCaFile is not null && string.IsNullOrWhiteSpace(JwksCaFile)) return "jwks_ca_file: must not be empty";
        if (OutOfRange(S.VerifiedTokenCacheSize, VerifiedTokenCacheSize) is { } cache) return cache;
        return null;
    }

    // one issuer's URL and key source; at is "" for the top-level fields, "issuers[i]." for a record
    private string? CheckIssuer(string at, string issuer, string? jwksUri, string? staticJwks)
    {
        if (issuer.EndsWith('/')) return at + "issuer: must not end with '/'";
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out var iss) || !IsHttpScheme(iss))
            return at + "issuer: must be an absolute https:// URL";
        if (iss.Scheme == Uri.UriSchemeHttp && !AllowInsecureHttp)
            return at + "issuer: http:// is refused (set allow_insecure_http to allow it)";
        if (!string.IsNullOrEmpty(iss.Query) || !string.IsNullOrEmpty(iss.Fragment) || !string.IsNullOrEmpty(iss.UserInfo))
            return at + "issuer: must not have a query, fragment or user info";

        if (staticJwks is not null && jwksUri is not null)
            return at + "static_jwks: set either static_jwks or jwks_uri, not both";
        if (jwksUri is not null)
        {
            if (!Uri.TryCreate(jwksUri, UriKind.Absolute, out var j) || !IsHttpScheme(j))
                return at + "jwks_uri: must be an absolute https:// URL";
            if (j.Scheme == Uri.UriSchemeHttp && !AllowInsecureHttp)
                return at + "jwks_uri: http:// is refused (set allow_insecure_http to allow it)";
            if (!string.IsNullOrEmpty(j.UserInfo)) return at + "jwks_uri: must not contain user info";
        }
        if (staticJwks is not null)
        {
            if (string.IsNullOrWhiteSpace(staticJwks)) return at + "static_jwks: must not be empty";
            var parsed = JwksParser.Parse(System.Text.Encoding.UTF8.GetBytes(staticJwks), previous: null, log: null);
            if (parsed.Set is null) return at + "static_jwks: " + parsed.Error;
        }
        return null;
    }

    /// <summary>"field: must be between MIN and MAX" when <paramref name="value"/> is outside the field's declared range.</summary>
    private static string? OutOfRange(SchemaField field, int value) => field.Allows(value) ? null : $"{field.Name}: must be {field.RangeText}";

    /// <summary>The discovery document URL for <see cref="Issuer"/>.</summary>
    public string DiscoveryUrl => Issuer + "/.well-known/openid-configuration";

    private static bool IsHttpScheme(Uri u) => u.Scheme == Uri.UriSchemeHttps || u.Scheme == Uri.UriSchemeHttp;

    private static bool IsTokenChar(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'
          or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';
}
