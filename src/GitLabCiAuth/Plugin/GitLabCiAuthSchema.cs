using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The config schema: what `-dump` gives Kong, what the server checks at instance start, and the source
/// of the README's config reference. Field names, defaults and bounds are the public contract.
/// </summary>
public static class GitLabCiAuthSchema
{
    public const string DefaultUpstreamHeadersJson = """
        {"iss":"X-GitLab-Issuer","project_id":"X-GitLab-Project-Id","project_path":"X-GitLab-Project-Path","namespace_path":"X-GitLab-Namespace-Path","pipeline_id":"X-GitLab-Pipeline-Id","job_id":"X-GitLab-Job-Id","ref":"X-GitLab-Ref","ref_protected":"X-GitLab-Ref-Protected","sha":"X-GitLab-Sha","environment":"X-GitLab-Environment","user_login":"X-GitLab-User-Login","runner_id":"X-GitLab-Runner-Id"}
        """;

    public const string DefaultRequiredClaimsJson = """["project_id","namespace_id","pipeline_id","job_id","runner_id","ref","ref_type"]""";

    private static readonly string[] AlgorithmNames = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    // Fields whose default or range other code reads (TokenValidationOptions, GitLabCiAuthConfig, KeySourceSettings):
    // declared once here, read from here. They precede Fields, which lists them (static initializers run in text order).
    public static readonly SchemaField Algorithms = Schema.Array("algorithms", Schema.StringType(oneOf: AlgorithmNames), defaultJson: """["RS256"]""", lenMin: 1,
        description: "allowed `alg` values; `none` and HS* can never be allowed");
    public static readonly SchemaField ClockSkewSeconds = Schema.Integer("clock_skew_seconds", @default: 60, between: (0, 600),
        description: "leeway for `exp`, `nbf`, `iat`");
    public static readonly SchemaField MaxTokenAgeSeconds = Schema.Integer("max_token_age_seconds", @default: 0, between: (0, 604800),
        description: "reject tokens whose `iat` is older (0: off)");
    public static readonly SchemaField RequiredClaims = Schema.Array("required_claims", Schema.StringType(lenMin: 1), defaultJson: DefaultRequiredClaimsJson,
        description: "claims that must be present and non-empty (rejects GitLab user-login tokens)");
    public static readonly SchemaField TokenHeader = Schema.String("token_header", @default: "authorization", lenMin: 1,
        description: "header carrying `Bearer <token>`");
    public static readonly SchemaField MaxTokenBytes = Schema.Integer("max_token_bytes", @default: 8192, between: (256, 65536),
        description: "larger tokens are rejected before any parsing");
    public static readonly SchemaField JwksRefreshSeconds = Schema.Integer("jwks_refresh_seconds", @default: 3600, between: (60, 86400),
        description: "background refresh period of the key set");
    public static readonly SchemaField JwksRefetchCooldownSeconds = Schema.Integer("jwks_refetch_cooldown_seconds", @default: 30, between: (1, 3600),
        description: "at most one refetch per key source in this window for an unknown `kid`");
    // its floor is jwks_refresh_seconds' floor: the stale window is never shorter than the refresh period
    public static readonly SchemaField JwksStaleSeconds = Schema.Integer("jwks_stale_seconds", @default: 86400, between: (JwksRefreshSeconds.Type.Between!.Value.Min, 2592000),
        description: "keep serving the last good key set this long while the source fails (at least jwks_refresh_seconds)");
    public static readonly SchemaField JwksFetchTimeoutMs = Schema.Integer("jwks_fetch_timeout_ms", @default: 2000, between: (100, 60000),
        description: "bound on one fetch (discovery + keys)");
    public static readonly SchemaField AllowInsecureHttp = Schema.Boolean("allow_insecure_http", @default: false,
        description: "permit http:// issuers and key URLs (local testing only)");
    public static readonly SchemaField VerifiedTokenCacheSize = Schema.Integer("verified_token_cache_size", @default: 10000, between: (0, 1000000),
        description: "bounded cache of already-verified tokens (0: off)");

    public static IReadOnlyList<SchemaField> Fields { get; } =
    [
        // token validation
        Schema.String("issuer", lenMin: 1, description: "exact `iss` of the tokens, e.g. https://gitlab.example.com (no trailing slash); set `issuer`, `issuers` or both"),
        Schema.Array("issuers", Schema.RecordType(
        [
            Schema.String("issuer", required: true, lenMin: 1),
            Schema.String("jwks_uri"),
            Schema.String("static_jwks"),
            Schema.Array("audiences", Schema.StringType(lenMin: 1)),
        ]), description: "more accepted issuers `{issuer, jwks_uri, static_jwks, audiences}`, each with its own key source; a record's `audiences` replace the route's for its tokens"),
        Schema.Array("audiences", Schema.StringType(lenMin: 1), lenMin: 1, description: "the token's `aud` (string or array) must contain one of these (required unless every `issuers` record has its own)"),
        Schema.String("jwks_uri", description: "key set URL of `issuer`; default: `jwks_uri` of {issuer}/.well-known/openid-configuration"),
        Schema.String("static_jwks", description: "inline JWKS JSON of `issuer` for air-gapped setups; nothing is fetched"),
        Algorithms,
        ClockSkewSeconds,
        MaxTokenAgeSeconds,
        RequiredClaims,
        TokenHeader,
        MaxTokenBytes,
        JwksRefreshSeconds,
        JwksRefetchCooldownSeconds,
        JwksStaleSeconds,
        JwksFetchTimeoutMs,
        Schema.String("jwks_ca_file", description: "extra CA bundle (PEM) for a GitLab behind a private CA"),
        AllowInsecureHttp,
        VerifiedTokenCacheSize,

        // policy
        Schema.Array("rules", Schema.RecordType(
        [
            Schema.String("name", required: true, lenMin: 1),
            Schema.String("effect", @default: "allow", oneOf: ["allow", "deny"]),
            Schema.Map("claims", Schema.StringType(lenMin: 1), Schema.ArrayType(Schema.StringType(lenMin: 1), lenMin: 1), required: true),
        ]), required: true, lenMin: 1, description: "claim policy: any matching deny rule wins, else any matching allow rule allows, else 403"),
        Schema.String("mode", @default: "enforce", oneOf: ["enforce", "dry_run"], description: "dry_run evaluates and logs but never blocks"),
        Schema.Boolean("expose_deny_reason", @default: false, description: "name the deciding rule in the 403 body"),

        // identity
        Schema.Map("upstream_headers", Schema.StringType(lenMin: 1), Schema.StringType(lenMin: 1), defaultJson: DefaultUpstreamHeadersJson.Trim(),
            description: "claim -> upstream header; only token values reach the upstream under these names"),
        Schema.Boolean("hide_credentials", @default: true, description: "remove the token header before proxying"),
        Schema.String("log_field", @default: "gitlab_ci", lenMin: 1, description: "key of the identity record in Kong's log serializer"),
        Schema.Boolean("log_user_email", @default: false, description: "include `user_email` in the log record"),
        Schema.String("credential_template", @default: "gitlab-project-{project_id}", description: "Kong credential id per request (empty: none)"),
        Schema.String("consumer_claim", description: "claim whose value names a Kong Consumer"),
        Schema.String("consumer_by", @default: "username", oneOf: ["username", "id"], description: "how consumer_claim is looked up"),
        Schema.Boolean("consumer_optional", @default: true, description: "continue without a Consumer (true) or answer 403 consumer_not_found (false)"),
        Schema.Array("authenticated_groups", Schema.StringType(lenMin: 1), defaultJson: "[]", description: "templates such as project:{project_id}, set as Kong's authenticated groups for `acl`"),
        Schema.String("anonymous", description: "Consumer (id or username) to authenticate as when no token is presented"),
    ];

    /// <summary>
    /// The plugin entity's other fields, as Kong's bundled auth plugins declare them: never scoped to a Consumer
    /// (the plugin is what finds the Consumer), and only on HTTP and gRPC.
    /// </summary>
    public static IReadOnlyList<SchemaField> EntityFields { get; } = [Schema.NoConsumer(), Schema.ProtocolsHttp()];

    /// <summary>
    /// Every cross-field rule of the server's validation that Kong's schema language can express: Kong refuses
    /// such a config when it is written, and the server refuses it at instance start with the same rule. The
    /// others need a comparison or a loop the language lacks and stay server-side only:
    /// <c>jwks_stale_seconds</c> at least <c>jwks_refresh_seconds</c>, an <c>upstream_headers</c> value equal to
    /// <c>token_header</c>, unique rule names and at least one allow rule.
    /// </summary>
    public static IReadOnlyList<EntityCheck> EntityChecks { get; } =
    [
        EntityCheck.AtLeastOneOf("config.issuer", "config.issuers"),
        EntityCheck.MutuallyExclusive("config.jwks_uri", "config.static_jwks"),
        EntityCheck.Conditional("config.consumer_by", FieldMatch.Eq("id"), "config.consumer_claim", FieldMatch.IsRequired,
            thenErr: "consumer_claim names the claim to look up when %s is id"),
        EntityCheck.Conditional("config.allow_insecure_http", FieldMatch.Eq(false), "config.issuer", FieldMatch.StartingWith("https://"),
            thenErr: "an https:// URL is required unless %s is true"),
        EntityCheck.Conditional("config.allow_insecure_http", FieldMatch.Eq(false), "config.jwks_uri", FieldMatch.StartingWith("https://"),
            thenErr: "an https:// URL is required unless %s is true"),
    ];
}
