using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary><c>!pattern</c>: the value is present and does not match (for arrays: no element matches).</summary>
internal sealed class NegatedPattern : ClaimPattern
{
    public NegatedPattern(ClaimPattern inner, string source) : base(source) => Inner = inner;

    public ClaimPattern Inner { get; }

    public override bool IsMatch(string value) => !Inner.IsMatch(value);

    public override bool Matches(in ClaimValue value)
    {
        if (!value.IsArray && value.Single is null) return false; // absent never matches
        return !Inner.Matches(value);
    }
}
