using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using GitLabCiAuth.Plugin;

namespace GitLabCiAuth.Keys;

public enum KeySourceKind
{
    /// <summary>Keys fetched from the <c>jwks_uri</c> found in <c>{issuer}/.well-known/openid-configuration</c>.</summary>
    Discovery,
    /// <summary>Keys fetched from an explicit <c>jwks_uri</c>.</summary>
    JwksUri,
    /// <summary>Inline <c>static_jwks</c>; nothing is fetched.</summary>
    Static,
}

/// <summary>
/// Where and how a key source gets its keys. Instances with equal settings share one source in a
/// <see cref="JwksKeyStore"/>; settings that differ in anything that affects fetching (URL, CA, http
/// permission, timings) make a separate source, so no instance inherits another's weaker settings.
/// </summary>
public sealed record KeySourceSettings
{
    public required KeySourceKind Kind { get; init; }

    /// <summary>The expected issuer: discovery checks the document's <c>issuer</c> and pins <c>jwks_uri</c> to its host.</summary>
    public required string Issuer { get; init; }

    /// <summary>Discovery URL (Discovery) or JWKS URL (JwksUri); null for Static.</summary>
    public string? Url { get; init; }

    public string? StaticJwks { get; init; }
    public string? CaFile { get; init; }
    public bool AllowInsecureHttp { get; init; }
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(GitLabCiAuthConfig.Fields.JwksRefreshSeconds.IntegerDefault);
    public TimeSpan RefetchCooldown { get; init; } = TimeSpan.FromSeconds(GitLabCiAuthConfig.Fields.JwksRefetchCooldownSeconds.IntegerDefault);
    public TimeSpan StaleLimit { get; init; } = TimeSpan.FromSeconds(GitLabCiAuthConfig.Fields.JwksStaleSeconds.IntegerDefault);
    public TimeSpan FetchTimeout { get; init; } = TimeSpan.FromMilliseconds(GitLabCiAuthConfig.Fields.JwksFetchTimeoutMs.IntegerDefault);

    /// <summary>Maximum size of a discovery document or key set body.</summary>
    public int MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>Human/metric id of the source: the JWKS URL, the discovery URL, or <c>static:&lt;sha256 prefix&gt;</c>.</summary>
    public string SourceId => Kind switch
    {
        KeySourceKind.Static => "static:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(StaticJwks ?? "")))[..16],
        _ => Url!,
    };

    /// <summary>The key sources are shared by: everything that changes how keys are obtained.</summary>
    internal string RegistryKey => string.Create(CultureInfo.InvariantCulture,
        $"{Kind}|{SourceId}|{(Kind == KeySourceKind.Discovery ? Issuer : "")}|{CaFile}|{AllowInsecureHttp}|{RefreshInterval.Ticks}|{RefetchCooldown.Ticks}|{StaleLimit.Ticks}|{FetchTimeout.Ticks}|{MaxBodyBytes}");
}
