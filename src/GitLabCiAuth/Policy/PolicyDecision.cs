namespace GitLabCiAuth.Policy;

/// <summary>The outcome of evaluating a policy. A value type: evaluating never allocates.</summary>
public readonly struct PolicyDecision
{
    /// <summary>A deny rule matched.</summary>
    public const string PolicyDenied = "policy_denied";

    /// <summary>No allow rule matched (and no deny rule did).</summary>
    public const string NoRuleMatched = "no_rule_matched";

    private PolicyDecision(bool allowed, string? code, string? rule)
    {
        Allowed = allowed;
        Code = code;
        Rule = rule;
    }

    public bool Allowed { get; }

    /// <summary><see cref="PolicyDenied"/> or <see cref="NoRuleMatched"/> when denied; null when allowed.</summary>
    public string? Code { get; }

    /// <summary>The deciding rule: the matching deny rule, or the matching allow rule; null for no_rule_matched.</summary>
    public string? Rule { get; }

    internal static PolicyDecision Allow(string rule) => new(true, null, rule);
    internal static PolicyDecision Deny(string rule) => new(false, PolicyDenied, rule);
    internal static PolicyDecision NoMatch => new(false, NoRuleMatched, null);

    public override string ToString() =>
        Allowed ? "allowed by " + Rule : Rule is null ? Code! : Code + " by " + Rule;
}
