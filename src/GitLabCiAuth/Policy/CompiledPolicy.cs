using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary>
/// An immutable, thread-safe compiled policy. <see cref="Evaluate"/> runs per request and does not allocate;
/// <see cref="Explain"/> builds a human-readable trace for the log, on demand only.
/// Deny rules are checked first (config order; any match denies), then allow rules (config order).
/// </summary>
public sealed class CompiledPolicy
{
    private readonly CompiledRule[] _deny;
    private readonly CompiledRule[] _allow;

    internal CompiledPolicy(CompiledRule[] deny, CompiledRule[] allow, bool usesMethod, bool usesPath)
    {
        _deny = deny;
        _allow = allow;
        UsesMethod = usesMethod;
        UsesPath = usesPath;
    }

    /// <summary>Some rule matches on <c>@method</c>: the caller must pass the request method.</summary>
    public bool UsesMethod { get; }

    /// <summary>Some rule matches on <c>@path</c>: the caller must pass the request path.</summary>
    public bool UsesPath { get; }

    public int RuleCount => _deny.Length + _allow.Length;

    /// <summary>Decides a request. <paramref name="method"/>/<paramref name="path"/> null = absent (never match).</summary>
    public PolicyDecision Evaluate(ClaimSet claims, string? method = null, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(claims);
        foreach (var rule in _deny)
        {
            if (rule.Matches(claims, method, path)) return PolicyDecision.Deny(rule.Name);
        }
        foreach (var rule in _allow)
        {
            if (rule.Matches(claims, method, path)) return PolicyDecision.Allow(rule.Name);
        }
        return PolicyDecision.NoMatch;
    }

    /// <summary>
    /// Same decision as <see cref="Evaluate"/>, with the reason: the deciding rule's conditions, or for
    /// <c>no_rule_matched</c> the first failing claim of every allow rule. Allocates; use for logging denials.
    /// </summary>
    public PolicyTrace Explain(ClaimSet claims, string? method = null, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(claims);
        var entries = new List<PolicyTraceEntry>();
        foreach (var rule in _deny)
        {
            if (!rule.Matches(claims, method, path)) continue;
            AddAll(entries, rule, claims, method, path);
            return new PolicyTrace(PolicyDecision.Deny(rule.Name), entries);
        }
        foreach (var rule in _allow)
        {
            if (!rule.Matches(claims, method, path)) continue;
            AddAll(entries, rule, claims, method, path);
            return new PolicyTrace(PolicyDecision.Allow(rule.Name), entries);
        }
        foreach (var rule in _allow)
        {
            var failing = rule.FirstFailing(claims, method, path);
            entries.Add(Entry(rule, rule.Conditions[failing], matched: false, claims, method, path));
        }
        return new PolicyTrace(PolicyDecision.NoMatch, entries);
    }

    private static void AddAll(List<PolicyTraceEntry> entries, CompiledRule rule, ClaimSet claims, string? method, string? path)
    {
        foreach (var condition in rule.Conditions)
            entries.Add(Entry(rule, condition, matched: true, claims, method, path));
    }

    private static PolicyTraceEntry Entry(CompiledRule rule, ClaimCondition condition, bool matched,
        ClaimSet claims, string? method, string? path)
    {
        var patterns = new string[condition.Patterns.Length];
        for (var i = 0; i < patterns.Length; i++) patterns[i] = condition.Patterns[i].Source;
        return new PolicyTraceEntry(rule.Name, condition.Claim, condition.DisplayValue(claims, method, path), patterns, matched);
    }
}
