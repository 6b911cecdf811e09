namespace GitLabCiAuth.Policy;

/// <summary>The <c>rules</c> section of a route's plugin config, as written by ops (filled by the config parser).</summary>
public sealed class PolicyConfig
{
    public List<RuleConfig> Rules { get; set; } = new();
}

/// <summary>
/// One rule: it matches when every listed claim matches at least one of its patterns.
/// See <see cref="ClaimPattern"/> for the pattern syntax and <see cref="VirtualClaims"/> for <c>@method</c>/<c>@path</c>.
/// </summary>
public sealed class RuleConfig
{
    public const string EffectAllow = "allow";
    public const string EffectDeny = "deny";

    /// <summary>Required, unique within the policy; reported as the deciding rule.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>"allow"</c> (default) or <c>"deny"</c>. A matching deny rule beats any allow rule.</summary>
    public string Effect { get; set; } = EffectAllow;

    /// <summary>Claim name -> patterns (AND across claims, OR across a claim's patterns). Evaluated in this order.</summary>
    public Dictionary<string, List<string>> Claims { get; set; } = new(StringComparer.Ordinal);
}
