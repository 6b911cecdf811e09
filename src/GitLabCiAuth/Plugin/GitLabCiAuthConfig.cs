using System.Text.Json.Serialization;
using GitLabCiAuth.Policy;
using S = GitLabCiAuth.Plugin.GitLabCiAuthSchema;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// The plugin's config as Kong stores it (field names are the public contract). Defaults and bounds
/// live in <see cref="GitLabCiAuthSchema"/>; the server fills them in before this is read (the initial
/// values below read the same declarations, for code that builds a config by hand).
/// </summary>
public sealed class GitLabCiAuthConfig
{
    // ---- token validation ----
    [JsonPropertyName("issuer")] public string? Issuer { get; set; }
    [JsonPropertyName("issuers")] public List<IssuerConfig>? Issuers { get; set; }
    [JsonPropertyName("audiences")] public List<string> Audiences { get; set; } = [];
    [JsonPropertyName("jwks_uri")] public string? JwksUri { get; set; }
    [JsonPropertyName("static_jwks")] public string? StaticJwks { get; set; }
    [JsonPropertyName("algorithms")] public List<string> Algorithms { get; set; } = [.. S.Algorithms.StringListDefault];
    [JsonPropertyName("clock_skew_seconds")] public int ClockSkewSeconds { get; set; } = S.ClockSkewSeconds.IntegerDefault;
    [JsonPropertyName("max_token_age_seconds")] public int MaxTokenAgeSeconds { get; set; } = S.MaxTokenAgeSeconds.IntegerDefault;
    [JsonPropertyName("required_claims")] public List<string> RequiredClaims { get; set; } = [];
    [JsonPropertyName("token_header")] public string TokenHeader { get; set; } = S.TokenHeader.StringDefault;
    [JsonPropertyName("max_token_bytes")] public int MaxTokenBytes { get; set; } = S.MaxTokenBytes.IntegerDefault;
    [JsonPropertyName("jwks_refresh_seconds")] public int JwksRefreshSeconds { get; set; } = S.JwksRefreshSeconds.IntegerDefault;
    [JsonPropertyName("jwks_refetch_cooldown_seconds")] public int JwksRefetchCooldownSeconds { get; set; } = S.JwksRefetchCooldownSeconds.IntegerDefault;
    [JsonPropertyName("jwks_stale_seconds")] public int JwksStaleSeconds { get; set; } = S.JwksStaleSeconds.IntegerDefault;
    [JsonPropertyName("jwks_fetch_timeout_ms")] public int JwksFetchTimeoutMs { get; set; } = S.JwksFetchTimeoutMs.IntegerDefault;
    [JsonPropertyName("jwks_ca_file")] public string? JwksCaFile { get; set; }
    [JsonPropertyName("allow_insecure_http")] public bool AllowInsecureHttp { get; set; } = S.AllowInsecureHttp.BooleanDefault;
    [JsonPropertyName("verified_token_cache_size")] public int VerifiedTokenCacheSize { get; set; } = S.VerifiedTokenCacheSize.IntegerDefault;

    // ---- policy ----
    [JsonPropertyName("rules")] public List<RuleConfig> Rules { get; set; } = [];
    [JsonPropertyName("mode")] public string Mode { get; set; } = "enforce";
    [JsonPropertyName("expose_deny_reason")] public bool ExposeDenyReason { get; set; }

    // ---- identity ----
    [JsonPropertyName("upstream_headers")] public Dictionary<string, string> UpstreamHeaders { get; set; } = [];
    [JsonPropertyName("hide_credentials")] public bool HideCredentials { get; set; } = true;
    [JsonPropertyName("log_field")] public string LogField { get; set; } = "gitlab_ci";
    [JsonPropertyName("log_user_email")] public bool LogUserEmail { get; set; }
    [JsonPropertyName("credential_template")] public string CredentialTemplate { get; set; } = "gitlab-project-{project_id}";
    [JsonPropertyName("consumer_claim")] public string? ConsumerClaim { get; set; }
    [JsonPropertyName("consumer_by")] public string ConsumerBy { get; set; } = "username";
    [JsonPropertyName("consumer_optional")] public bool ConsumerOptional { get; set; } = true;
    [JsonPropertyName("authenticated_groups")] public List<string> AuthenticatedGroups { get; set; } = [];
    [JsonPropertyName("anonymous")] public string? Anonymous { get; set; }

    public bool DryRun => Mode == "dry_run";
}

/// <summary>One <c>issuers[]</c> record.</summary>
public sealed class IssuerConfig
{
    [JsonPropertyName("issuer")] public string Issuer { get; set; } = "";
    [JsonPropertyName("jwks_uri")] public string? JwksUri { get; set; }
    [JsonPropertyName("static_jwks")] public string? StaticJwks { get; set; }
    [JsonPropertyName("audiences")] public List<string>? Audiences { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(GitLabCiAuthConfig))]
internal sealed partial class GitLabCiAuthJson : JsonSerializerContext;
