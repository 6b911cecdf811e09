using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The schema beyond the config fields (those are declared on <see cref="GitLabCiAuthConfig"/>): the plugin
/// entity's other fields, the cross-field rules, and the long defaults the field declarations name.
/// </summary>
public static class GitLabCiAuthSchema
{
    /// <summary>The default of <c>upstream_headers</c>.</summary>
    public const string DefaultUpstreamHeadersJson = """
        {"iss":"X-GitLab-Issuer","project_id":"X-GitLab-Project-Id","project_path":"X-GitLab-Project-Path","namespace_path":"X-GitLab-Namespace-Path","pipeline_id":"X-GitLab-Pipeline-Id","job_id":"X-GitLab-Job-Id","ref":"X-GitLab-Ref","ref_protected":"X-GitLab-Ref-Protected","sha":"X-GitLab-Sha","environment":"X-GitLab-Environment","user_login":"X-GitLab-User-Login","runner_id":"X-GitLab-Runner-Id"}
        """;

    /// <summary>The default of <c>required_claims</c>.</summary>
    public const string DefaultRequiredClaimsJson = """["project_id","namespace_id","pipeline_id","job_id","runner_id","ref","ref_type"]""";

    /// <summary>
    /// The floor of <c>jwks_refresh_seconds</c>, which is also the floor of <c>jwks_stale_seconds</c>: the stale window
    /// is never shorter than the refresh period.
    /// </summary>
    public const int JwksRefreshFloorSeconds = 60;

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
