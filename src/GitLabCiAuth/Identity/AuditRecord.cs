using GitLabCiAuth.Claims;
using Kong.PluginServer.Pdk;

namespace GitLabCiAuth.Identity;

/// <summary>
/// The record put into Kong's log serializer (kong.log.set_serialize_value under `log_field`), so every
/// Kong log plugin carries who called: the job's identity, the token's jti and short hash, the decision,
/// the deciding rule and the mode. Never the token itself; the user's email only when configured. Claim values are
/// written in <see cref="ClaimText"/>'s escaped, capped form (jti, trace and the rest are already in it).
/// </summary>
public sealed class AuditRecord : IPdkValue
{
    public static readonly string[] IdentityClaims = ClaimNames.Canonical(
    [
        "project_id", "project_path", "namespace_id", "namespace_path", "pipeline_id", "pipeline_source", "job_id",
        "ref", "ref_type", "ref_protected", "sha", "environment", "environment_protected", "deployment_tier",
        "runner_id", "runner_environment", "user_id", "user_login",
    ]);
    private static readonly string UserEmail = ClaimNames.Canonical("user_email");

    public ClaimSet? Claims { get; init; }
    public bool IncludeEmail { get; init; }
    public string? Jti { get; init; }
    public string? TokenHash { get; init; }
    public required string Decision { get; init; }     // allow | deny
    public string? Code { get; init; }                 // token_expired, policy_denied, ...
    public string? Rule { get; init; }
    public required string Mode { get; init; }         // enforce | dry_run
    public string? WouldBe { get; init; }              // dry_run: the decision enforce would have made
    public string? Trace { get; init; }
    public IReadOnlyList<string>? DroppedHeaders { get; init; }   // identity headers not sent: the claim was unfit to send

    /// <summary>The values of <see cref="IdentityClaims"/> (18 names), looked up once per write.</summary>
    [System.Runtime.CompilerServices.InlineArray(18)]
    private struct IdentityValues { private string? _first; }

    public void WriteTo(PdkValueWriter w)
    {
        var values = new IdentityValues();
        string? iss = Claims?.GetString(ClaimNames.Issuer);
        string? email = IncludeEmail ? Claims?.GetString(UserEmail) : null;
        int n = 2;
        if (iss is not null) n++;
        if (email is not null) n++;
        if (Claims is not null)
        {
            for (int i = 0; i < IdentityClaims.Length; i++)
                if ((values[i] = Claims.GetString(IdentityClaims[i])) is not null) n++;
        }
        if (Jti is not null) n++;
        if (TokenHash is not null) n++;
        if (Code is not null) n++;
        if (Rule is not null) n++;
        if (WouldBe is not null) n++;
        if (Trace is not null) n++;
        if (DroppedHeaders is not null) n++;

        w.BeginMap(n);
        // project ids are per GitLab instance: the record always says which one
        if (iss is not null) { w.Key("issuer"); w.String(ClaimText.Escape(iss)); }
        for (int i = 0; i < IdentityClaims.Length; i++)
            if (values[i] is { } v) { w.Key(IdentityClaims[i]); w.String(ClaimText.Escape(v)); }
        if (email is not null) { w.Key("user_email"); w.String(ClaimText.Escape(email)); }
        if (Jti is not null) { w.Key("jti"); w.String(Jti); }
        if (TokenHash is not null) { w.Key("token_hash"); w.String(TokenHash); }
        w.Key("decision"); w.String(Decision);
        if (Code is not null) { w.Key("code"); w.String(Code); }
        if (Rule is not null) { w.Key("rule"); w.String(Rule); }
        w.Key("mode"); w.String(Mode);
        if (WouldBe is not null) { w.Key("would_be"); w.String(WouldBe); }
        if (Trace is not null) { w.Key("trace"); w.String(Trace); }
        if (DroppedHeaders is not null) { w.Key("dropped_headers"); w.StringList(DroppedHeaders); }
        w.EndMap();
    }
}
