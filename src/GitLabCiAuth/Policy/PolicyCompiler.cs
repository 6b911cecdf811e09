namespace GitLabCiAuth.Policy;

/// <summary>
/// Validates a rules list and compiles its patterns once. Errors throw <see cref="PolicyConfigException"/>
/// naming the rule (0-based index and name) and the claim, e.g.
/// <c>rules[2] (name "deploy-prod") claim "ref": invalid regular expression ...</c>.
/// </summary>
public static class PolicyCompiler
{
    public static CompiledPolicy Compile(PolicyConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Compile(config.Rules);
    }

    public static CompiledPolicy Compile(IReadOnlyList<RuleConfig>? rules)
    {
        rules ??= Array.Empty<RuleConfig>();
        var deny = new List<CompiledRule>();
        var allow = new List<CompiledRule>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        bool usesMethod = false, usesPath = false;

        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i] ?? throw Error($"rules[{i}]", $"rules[{i}]: rule is null");
            var at = $"rules[{i}]";

            if (string.IsNullOrWhiteSpace(rule.Name))
                throw Error(at + ".name", $"{at}: a rule needs a non-empty name");
            var label = $"{at} (name \"{rule.Name}\")";
            if (names.TryGetValue(rule.Name, out var first))
                throw Error(at + ".name", $"{label}: duplicate rule name (already used by rules[{first}])");
            names.Add(rule.Name, i);

            bool isDeny;
            if (rule.Effect is null or RuleConfig.EffectAllow) isDeny = false;
            else if (rule.Effect == RuleConfig.EffectDeny) isDeny = true;
            else throw Error(at + ".effect", $"{label}: effect must be \"allow\" or \"deny\", not \"{rule.Effect}\"");

            if (rule.Claims is null || rule.Claims.Count == 0)
                throw Error(at + ".claims", $"{label}: a rule needs at least one claim");

            var conditions = new ClaimCondition[rule.Claims.Count];
            var c = 0;
            foreach (var (claim, patterns) in rule.Claims)
            {
                conditions[c++] = CompileCondition(at, label, claim, patterns, ref usesMethod, ref usesPath);
            }
            (isDeny ? deny : allow).Add(new CompiledRule(i, rule.Name, isDeny, conditions));
        }

        if (allow.Count == 0)
            throw Error("rules",
                "the policy has no allow rule, so it would deny every request. Trusting every project must be explicit: " +
                "add an allow rule such as { name: \"any-project\", claims: { project_id: [\"*\"] } }");

        return new CompiledPolicy(deny.ToArray(), allow.ToArray(), usesMethod, usesPath);
    }

    private static ClaimCondition CompileCondition(string at, string label, string claim, List<string>? patterns,
        ref bool usesMethod, ref bool usesPath)
    {
        if (string.IsNullOrEmpty(claim))
            throw Error(at + ".claims", $"{label}: a claim name is empty");
        var field = $"{at}.claims.{claim}";
        var where = $"{label} claim \"{claim}\"";

        var source = ClaimCondition.ValueSource.Token;
        if (claim[0] == VirtualClaims.Prefix)
        {
            switch (claim)
            {
                case VirtualClaims.Method: source = ClaimCondition.ValueSource.Method; usesMethod = true; break;
                case VirtualClaims.Path: source = ClaimCondition.ValueSource.Path; usesPath = true; break;
                default:
                    throw Error(field, $"{where}: unknown request claim; only \"{VirtualClaims.Method}\" and \"{VirtualClaims.Path}\" are supported");
            }
        }

        if (patterns is null || patterns.Count == 0)
            throw Error(field, $"{where}: needs at least one pattern");

        var compiled = new ClaimPattern[patterns.Count];
        for (var p = 0; p < patterns.Count; p++)
        {
            try
            {
                compiled[p] = ClaimPattern.Parse(patterns[p]);
            }
            catch (FormatException e)
            {
                throw Error(field, $"{where}: {e.Message} (pattern {p + 1}: {Show(patterns[p])})", e);
            }
        }
        return new ClaimCondition(claim, source, compiled);
    }

    private static string Show(string? pattern)
    {
        if (pattern is null) return "(null)";
        const int max = 80;
        return "\"" + (pattern.Length > max ? pattern.Substring(0, max) + "..." : pattern) + "\"";
    }

    private static PolicyConfigException Error(string field, string message, Exception? inner = null) =>
        new(field, message, inner);
}
