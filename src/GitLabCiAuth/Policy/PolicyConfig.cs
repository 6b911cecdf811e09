using Kong.PluginServer.Plugins;

namespace GitLabCiAuth.Policy;

/// <summary>The <c>rules</c> section of a route's plugin config, as written by ops (filled by the config parser).</summary>
public sealed class PolicyConfig
{
    public List<RuleConfig> Rules { get; set; } = new();
}

/// <summary>
/// One rule: it matches when every listed claim matches at least one of its patterns.
/// See <see cref="ClaimPattern"/> for the pattern syntax and <see cref="VirtualClaims"/> for <c>@method</c>/<c>@path</c>.
/// Declared as the <c>rules[]</c> record of the plugin's config.
/// </summary>
[KongRecord]
public sealed partial class RuleConfig
{
    public const string EffectAllow = "allow";
    public const string EffectDeny = "deny";

    /// <summary>Required, unique within the policy; reported as the deciding rule.</summary>
    [KongField(Required = true, LenMin = 1)]
    public string Name { get; set; } = "";

    /// <summary><c>"allow"</c> (default) or <c>"deny"</c>. A matching deny rule beats any allow rule.</summary>
    [KongField(Default = EffectAllow, OneOf = [EffectAllow, EffectDeny])]
    public string Effect { get; set; }

    /// <summary>Claim name -> patterns (AND across claims, OR across a claim's patterns). Evaluated in this order.</summary>
    [KongField(Required = true, KeyLenMin = 1, ValueLenMin = 1, ElementLenMin = 1)]
    public Dictionary<string, List<string>> Claims { get; set; } = new(StringComparer.Ordinal);
}
