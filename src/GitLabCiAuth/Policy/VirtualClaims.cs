namespace GitLabCiAuth.Policy;

/// <summary>
/// Claim names that refer to the HTTP request rather than the token. Any other name starting with
/// <c>@</c> is reserved and rejected at compile time.
/// </summary>
public static class VirtualClaims
{
    /// <summary>The request method as Kong reports it (e.g. <c>GET</c>); matched case-sensitively.</summary>
    public const string Method = "@method";

    /// <summary>The request path without the query string (e.g. <c>/api/v1/deploy</c>).</summary>
    public const string Path = "@path";

    public const char Prefix = '@';
}
