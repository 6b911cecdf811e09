using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary>One claim of a compiled rule: matches when the claim is present and matches any of its patterns.</summary>
internal sealed class ClaimCondition
{
    public enum ValueSource : byte { Token, Method, Path }

    public ClaimCondition(string claim, ValueSource source, ClaimPattern[] patterns)
    {
        Claim = ClaimNames.Canonical(claim);
        Source = source;
        Patterns = patterns;
    }

    public string Claim { get; }
    public ValueSource Source { get; }
    public ClaimPattern[] Patterns { get; }

    public bool Matches(ClaimSet claims, string? method, string? path)
    {
        switch (Source)
        {
            case ValueSource.Method: return MatchesString(method);
            case ValueSource.Path: return MatchesString(path);
        }
        if (!claims.TryGet(Claim, out var value)) return false;
        foreach (var pattern in Patterns)
        {
            if (pattern.Matches(value)) return true;
        }
        return false;
    }

    private bool MatchesString(string? value)
    {
        if (value is null) return false;
        foreach (var pattern in Patterns)
        {
            if (pattern.IsMatch(value)) return true;
        }
        return false;
    }

    /// <summary>The value as shown in traces (bounded, secrets redacted), or null when absent.</summary>
    public string? DisplayValue(ClaimSet claims, string? method, string? path) => Source switch
    {
        ValueSource.Method => method is null ? null : TraceText.FormatString(method),
        ValueSource.Path => path is null ? null : TraceText.FormatString(path),
        _ => claims.TryGet(Claim, out var value) ? TraceText.FormatValue(value) : null,
    };
}
