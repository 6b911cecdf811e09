namespace GitLabCiAuth.Tokens;

/// <summary>
/// One accepted issuer (an <c>issuers[]</c> record, or the top-level <c>issuer</c> with <c>jwks_uri</c>/<c>static_jwks</c>):
/// its exact <c>iss</c>, its own key source, and optionally its own audiences, which then replace the route's for its
/// tokens. Every other validation setting is the route's.
/// </summary>
public sealed record IssuerOptions
{
    /// <summary>Exact expected <c>iss</c> (no trailing slash).</summary>
    public required string Issuer { get; init; }

    /// <summary>Where to fetch this issuer's keys; null = discover from <c>{issuer}/.well-known/openid-configuration</c>.</summary>
    public string? JwksUri { get; init; }

    /// <summary>Inline JWKS JSON; when set nothing is fetched.</summary>
    public string? StaticJwks { get; init; }

    /// <summary>This issuer's audiences; null or empty = the route's <c>audiences</c>.</summary>
    public IReadOnlyList<string>? Audiences { get; init; }

    /// <summary>The discovery document URL.</summary>
    public string DiscoveryUrl => Issuer + "/.well-known/openid-configuration";
}
