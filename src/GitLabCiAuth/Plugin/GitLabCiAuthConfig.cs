using GitLabCiAuth.Policy;
using Kong.PluginServer.Plugins;
using S = GitLabCiAuth.Plugin.GitLabCiAuthSchema;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The plugin's config as Kong stores it: each field is declared once, here (name, type, default, rules,
/// description; field names are the public contract). The generator turns these declarations into the schema
/// `-dump` gives Kong and the server checks at instance start (<see cref="IKongConfig{TSelf}.KongFields"/>), the
/// README's config reference, the reader of Kong's config, and the constructor's defaults; other code reads a
/// field's default or range from <c>GitLabCiAuthConfig.Fields.&lt;Property&gt;</c>.
/// </summary>
[KongConfig]
public sealed partial class GitLabCiAuthConfig
{
    // ---- token validation ----
    [KongField(LenMin = 1, Description = "exact `iss` of the tokens, e.g. https://gitlab.example.com (no trailing slash); set `issuer`, `issuers` or both")]
    public string? Issuer { get; set; }

    [KongField(Description = "more accepted issuers `{issuer, jwks_uri, static_jwks, audiences}`, each with its own key source; a record's `audiences` replace the route's for its tokens")]
    public List<IssuerConfig>? Issuers { get; set; }

    [KongField(LenMin = 1, ElementLenMin = 1, Description = "the token's `aud` (string or array) must contain one of these (required unless every `issuers` record has its own)")]
    public List<string> Audiences { get; set; } = [];

    [KongField(Description = "key set URL of `issuer`; default: `jwks_uri` of {issuer}/.well-known/openid-configuration")]
    public string? JwksUri { get; set; }

    [KongField(Description = "inline JWKS JSON of `issuer` for air-gapped setups; nothing is fetched")]
    public string? StaticJwks { get; set; }

    [KongField(DefaultJson = """["RS256"]""", LenMin = 1, ElementOneOf = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
        Description = "allowed `alg` values; `none` and HS* can never be allowed")]
    public List<string> Algorithms { get; set; }

    [KongField(Default = 60, Min = 0, Max = 600, Description = "leeway for `exp`, `nbf`, `iat`")]
    public int ClockSkewSeconds { get; set; }

    [KongField(Default = 0, Min = 0, Max = 604800, Description = "reject tokens whose `iat` is older (0: off)")]
    public int MaxTokenAgeSeconds { get; set; }

    [KongField(DefaultJson = S.DefaultRequiredClaimsJson, ElementLenMin = 1,
        Description = "claims that must be present and non-empty (rejects GitLab user-login tokens)")]
    public List<string> RequiredClaims { get; set; }

    [KongField(Default = "authorization", LenMin = 1, Description = "header carrying `Bearer <token>`")]
    public string TokenHeader { get; set; }

    [KongField(Default = 8192, Min = 256, Max = 65536, Description = "larger tokens are rejected before any parsing")]
    public int MaxTokenBytes { get; set; }

    [KongField(Default = 3600, Min = S.JwksRefreshFloorSeconds, Max = 86400, Description = "background refresh period of the key set")]
    public int JwksRefreshSeconds { get; set; }

    [KongField(Default = 30, Min = 1, Max = 3600, Description = "at most one refetch per key source in this window for an unknown `kid`")]
    public int JwksRefetchCooldownSeconds { get; set; }

    // its floor is jwks_refresh_seconds' floor: the stale window is never shorter than the refresh period
    [KongField(Default = 86400, Min = S.JwksRefreshFloorSeconds, Max = 2592000,
        Description = "keep serving the last good key set this long while the source fails (at least jwks_refresh_seconds)")]
    public int JwksStaleSeconds { get; set; }

    [KongField(Default = 2000, Min = 100, Max = 60000, Description = "bound on one fetch (discovery + keys)")]
    public int JwksFetchTimeoutMs { get; set; }

    [KongField(Description = "extra CA bundle (PEM) for a GitLab behind a private CA")]
    public string? JwksCaFile { get; set; }

    [KongField(Default = false, Description = "permit http:// issuers and key URLs (local testing only)")]
    public bool AllowInsecureHttp { get; set; }

    [KongField(Default = 10000, Min = 0, Max = 1000000, Description = "bounded cache of already-verified tokens (0: off)")]
    public int VerifiedTokenCacheSize { get; set; }

    // ---- policy ----
    [KongField(Required = true, LenMin = 1, Description = "claim policy: any matching deny rule wins, else any matching allow rule allows, else 403")]
    public List<RuleConfig> Rules { get; set; } = [];

    [KongField(Default = "enforce", OneOf = ["enforce", "dry_run"], Description = "dry_run evaluates and logs but never blocks")]
    public string Mode { get; set; }

    [KongField(Default = false, Description = "name the deciding rule in the 403 body")]
    public bool ExposeDenyReason { get; set; }

    // ---- identity ----
    [KongField(DefaultJson = S.DefaultUpstreamHeadersJson, KeyLenMin = 1, ValueLenMin = 1,
        Description = "claim -> upstream header; only token values reach the upstream under these names")]
    public Dictionary<string, string> UpstreamHeaders { get; set; }

    [KongField(Default = true, Description = "remove the token header before proxying")]
    public bool HideCredentials { get; set; }

    [KongField(Default = "gitlab_ci", LenMin = 1, Description = "key of the identity record in Kong's log serializer")]
    public string LogField { get; set; }

    [KongField(Default = false, Description = "include `user_email` in the log record")]
    public bool LogUserEmail { get; set; }

    [KongField(Default = "gitlab-project-{project_id}", Description = "Kong credential id per request (empty: none)")]
    public string CredentialTemplate { get; set; }

    [KongField(Description = "claim whose value names a Kong Consumer")]
    public string? ConsumerClaim { get; set; }

    [KongField(Default = "username", OneOf = ["username", "id"], Description = "how consumer_claim is looked up")]
    public string ConsumerBy { get; set; }

    [KongField(Default = true, Description = "continue without a Consumer (true) or answer 403 consumer_not_found (false)")]
    public bool ConsumerOptional { get; set; }

    [KongField(DefaultJson = "[]", ElementLenMin = 1, Description = "templates such as project:{project_id}, set as Kong's authenticated groups for `acl`")]
    public List<string> AuthenticatedGroups { get; set; }

    [KongField(Description = "Consumer (id or username) to authenticate as when no token is presented")]
    public string? Anonymous { get; set; }

    public bool DryRun => Mode == "dry_run";
}

/// <summary>One <c>issuers[]</c> record.</summary>
[KongRecord]
public sealed partial class IssuerConfig
{
    [KongField(Required = true, LenMin = 1)]
    public string Issuer { get; set; } = "";

    public string? JwksUri { get; set; }

    public string? StaticJwks { get; set; }

    [KongField(ElementLenMin = 1)]
    public List<string>? Audiences { get; set; }
}
