using System.Text;

namespace GitLabCiAuth.Policy;

/// <summary>Why a policy decided as it did (built by <see cref="CompiledPolicy.Explain"/>, for logs).</summary>
public sealed class PolicyTrace
{
    /// <summary>At most this many entries are rendered by <see cref="ToString"/>; the rest are counted.</summary>
    public const int MaxRenderedEntries = 16;

    internal PolicyTrace(PolicyDecision decision, IReadOnlyList<PolicyTraceEntry> entries)
    {
        Decision = decision;
        Entries = entries;
    }

    public PolicyDecision Decision { get; }

    /// <summary>
    /// The deciding rule's conditions (all matched) when a rule decided; for <c>no_rule_matched</c>,
    /// one entry per allow rule (config order): its first claim that did not match.
    /// </summary>
    public IReadOnlyList<PolicyTraceEntry> Entries { get; }

    /// <summary>
    /// One line, e.g. <c>no_rule_matched: deploy-prod: ref="feature/x" !~ ["main"]; any-ro: @method="POST" !~ ["GET","HEAD"]</c>.
    /// Conditions of one rule are joined by ", ", rules by "; ".
    /// </summary>
    public override string ToString()
    {
        var sb = new StringBuilder(128);
        sb.Append(Decision.Allowed ? "allowed" : Decision.Code);
        string? currentRule = null;
        var shown = Math.Min(Entries.Count, MaxRenderedEntries);
        for (var i = 0; i < shown; i++)
        {
            var e = Entries[i];
            if (i == 0 || !string.Equals(e.Rule, currentRule, StringComparison.Ordinal))
            {
                sb.Append(i == 0 ? ": " : "; ").Append(e.Rule).Append(": ");
                currentRule = e.Rule;
            }
            else
            {
                sb.Append(", ");
            }
            e.AppendTo(sb);
        }
        if (Entries.Count > shown) sb.Append("; ... (+").Append(Entries.Count - shown).Append(" more)");
        return sb.ToString();
    }
}

/// <summary>One claim of one rule in a <see cref="PolicyTrace"/>.</summary>
public sealed class PolicyTraceEntry
{
    internal PolicyTraceEntry(string rule, string claim, string? value, IReadOnlyList<string> patterns, bool matched)
    {
        Rule = rule;
        Claim = claim;
        Value = value;
        Patterns = patterns;
        Matched = matched;
    }

    public string Rule { get; }
    public string Claim { get; }

    /// <summary>The value as rendered for logs (quoted, truncated, token-shaped values redacted); null when absent.</summary>
    public string? Value { get; }

    /// <summary>The claim's patterns as written in the config.</summary>
    public IReadOnlyList<string> Patterns { get; }

    public bool Matched { get; }

    internal void AppendTo(StringBuilder sb)
    {
        sb.Append(Claim).Append('=').Append(Value ?? "(absent)").Append(Matched ? " ~ " : " !~ ");
        TraceText.AppendPatterns(sb, Patterns);
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Rule).Append(": ");
        AppendTo(sb);
        return sb.ToString();
    }
}
