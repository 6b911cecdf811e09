using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary>A validated rule: all of its conditions must match.</summary>
internal sealed class CompiledRule
{
    public CompiledRule(int index, string name, bool isDeny, ClaimCondition[] conditions)
    {
        Index = index;
        Name = name;
        IsDeny = isDeny;
        Conditions = conditions;
    }

    /// <summary>Position in the config's rules list.</summary>
    public int Index { get; }
    public string Name { get; }
    public bool IsDeny { get; }
    public ClaimCondition[] Conditions { get; }

    public bool Matches(ClaimSet claims, string? method, string? path) =>
        FirstFailing(claims, method, path) < 0;

    /// <summary>Index of the first condition that does not match, or -1 when the rule matches.</summary>
    public int FirstFailing(ClaimSet claims, string? method, string? path)
    {
        var conditions = Conditions;
        for (var i = 0; i < conditions.Length; i++)
        {
            if (!conditions[i].Matches(claims, method, path)) return i;
        }
        return -1;
    }
}
