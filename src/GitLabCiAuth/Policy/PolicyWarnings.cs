namespace GitLabCiAuth.Policy;

/// <summary>
/// Rules that are valid but fail open silently: the config loads, and the policy does less than it reads as doing.
/// The plugin writes each warning to Kong's error log (<c>warn</c>) at an instance's first request, and <c>check</c>
/// prints them.
/// </summary>
public static class PolicyWarnings
{
    /// <summary>Claims GitLab leaves out of many tokens (only jobs with <c>environment:</c>, opt-ins, feature flags, newer versions).</summary>
    public static readonly IReadOnlySet<string> OftenAbsent = new HashSet<string>(StringComparer.Ordinal)
    {
        "environment", "environment_protected", "deployment_tier", "environment_action", "groups_direct", "user_identities",
        "user_access_level", "ci_config_ref_uri", "ci_config_sha", "job_project_id", "job_project_path", "job_namespace_id",
        "job_namespace_path", "target_audience",
    };

    /// <param name="rules">The route's rules (already compiled without error).</param>
    /// <param name="requiredClaims">Claims every accepted token has (<c>required_claims</c>).</param>
    public static IReadOnlyList<string> Find(IReadOnlyList<RuleConfig> rules, IEnumerable<string> requiredClaims)
    {
        var required = new HashSet<string>(requiredClaims, StringComparer.Ordinal) { "iss", "aud", "exp" };
        var warnings = new List<string>();
        for (int i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            bool deny = rule.Effect == RuleConfig.EffectDeny;
            string at = $"rules[{i}] (name \"{rule.Name}\")";
            foreach (var (claim, patterns) in rule.Claims)
            {
                bool request = claim.Length > 0 && claim[0] == VirtualClaims.Prefix;
                if (deny && !request && !required.Contains(claim))
                    warnings.Add($"{at}: deny rule on claim \"{claim}\", which is not in required_claims: a token without " +
                                 $"\"{claim}\" never matches it, so such jobs are not denied (add \"{claim}\" to required_claims, " +
                                 "or prefer allow rules)");
                foreach (var pattern in patterns)
                {
                    if (pattern.StartsWith('!') && !request && !required.Contains(claim) && OftenAbsent.Contains(claim))
                        warnings.Add($"{at}: \"{pattern}\" on claim \"{claim}\", which GitLab often leaves out: a token without it " +
                                     (deny ? "never matches, so those jobs escape this deny rule" : "never matches, so those jobs are not allowed by this rule"));
                    if (SlashedDoubleStar(pattern) is { } example)
                        warnings.Add($"{at}: \"{pattern}\" on claim \"{claim}\": \"**\" matches any run of characters but the " +
                                     $"slashes around it must both be there, so it does not match \"{example}\" (list that value too)");
                }
            }
        }
        return warnings;
    }

    // "a/**/b" reads like "any number of path segments, zero included", but does not match "a/b"
    private static string? SlashedDoubleStar(string pattern)
    {
        string body = pattern.StartsWith('!') ? pattern[1..] : pattern;
        if (body.StartsWith(RegexPattern.Prefix, StringComparison.Ordinal)) return null;
        if (body.StartsWith("**/", StringComparison.Ordinal)) return body[3..];
        int at = body.IndexOf("/**/", StringComparison.Ordinal);
        return at < 0 ? null : body[..at] + "/" + body[(at + 4)..];
    }
}
