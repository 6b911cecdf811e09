using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Plugin;

/// <summary>What happens to a request (see <see cref="AccessDecision.Outcome"/>).</summary>
internal enum AccessOutcome
{
    /// <summary>The request continues with the token's identity (enforce: allowed; dry_run: allowed or would be denied).</summary>
    Allow,

    /// <summary>403: the policy refuses the job, or no Consumer matches it.</summary>
    Deny,

    /// <summary>401 or 503: no usable token.</summary>
    Reject,

    /// <summary>The token was refused and <c>anonymous</c> is set: the request continues as that Consumer.</summary>
    Anonymous,

    /// <summary>dry_run: the token would be rejected; the request continues without identity.</summary>
    Forward,

    /// <summary>With <c>anonymous</c>, an earlier auth plugin already authenticated the request: it stands.</summary>
    Defer,
}

/// <summary>
/// The access decision for one request, made without Kong: a pure function of the token, the compiled policy and the
/// request's method and path (<see cref="AccessDecider.Decide"/>), turned into its dry_run form by <see cref="AsDryRun"/>
/// and into its no-Consumer form by <see cref="WithoutConsumer"/>. <see cref="AccessHandler"/> applies it. A value type:
/// deciding allocates nothing on an allowed request.
/// </summary>
internal readonly record struct AccessDecision
{
    public const string ConsumerNotFound = "consumer_not_found";
    public const string WouldAllow = "allow";
    public const string WouldDeny = "deny";

    public AccessOutcome Outcome { get; init; }

    /// <summary>The response status of a <see cref="AccessOutcome.Deny"/> or <see cref="AccessOutcome.Reject"/>; 0 when the request continues.</summary>
    public int Status { get; init; }

    /// <summary>The error code: the token's (<see cref="TokenResult.ErrorCode"/>), the policy's, or <see cref="ConsumerNotFound"/>;
    /// in dry_run the code enforce would answer with. Null when allowed.</summary>
    public string? Code { get; init; }

    /// <summary>The deciding policy rule, when the policy was evaluated.</summary>
    public string? Rule { get; init; }

    /// <summary>Why the policy refused (the evaluation trace), when it did.</summary>
    public string? Trace { get; init; }

    /// <summary>dry_run only: <see cref="WouldAllow"/> or <see cref="WouldDeny"/>, what enforce would do. Null when enforcing.</summary>
    public string? WouldBe { get; init; }

    /// <summary>The validated (or refused) token; null when an earlier plugin's credential settled the request.</summary>
    public TokenResult? Token { get; init; }

    /// <summary>The policy's verdict, when the token was valid.</summary>
    public PolicyDecision? Policy { get; init; }

    /// <summary>Refused in every mode, dry_run included (the header view was full: nothing could be trusted).</summary>
    public bool EveryMode { get; init; }

    public bool DryRun => WouldBe is not null;

    /// <summary>The client-facing message of an exit.</summary>
    public string Message => Outcome switch
    {
        AccessOutcome.Deny when Code == ConsumerNotFound => "no Kong consumer for this job",
        AccessOutcome.Deny when Code == PolicyDecision.PolicyDenied => "this job is denied by the route's policy",
        AccessOutcome.Deny => "no rule of the route's policy allows this job",
        AccessOutcome.Reject => Token!.Error switch
        {
            TokenError.TokenMissing => "a GitLab CI ID token is required",
            TokenError.KeysUnavailable => "the GitLab signing keys are unavailable; retry later",
            _ => "invalid GitLab CI ID token: " + Token.Description,
        },
        _ => "",
    };

    /// <summary>An earlier auth plugin's credential settles the request (with <c>anonymous</c>).</summary>
    public static AccessDecision Defer => new() { Outcome = AccessOutcome.Defer };

    /// <summary>A refusal that holds in dry_run too: the request cannot be checked.</summary>
    public static AccessDecision Refuse(TokenResult refused) => Rejected(refused) with { EveryMode = true };

    internal static AccessDecision Rejected(TokenResult token) => new()
    {
        Outcome = AccessOutcome.Reject,
        Status = token.Error switch { TokenError.KeysUnavailable => 503, _ => 401 },
        Code = token.ErrorCode,
        Token = token,
    };

    /// <summary>
    /// What dry_run does instead: nothing is refused (a rejected or anonymous request continues without identity, a
    /// denied one with its identity), and <see cref="WouldBe"/> records what enforce would have done.
    /// </summary>
    public AccessDecision AsDryRun() => Outcome switch
    {
        _ when DryRun || EveryMode => this,
        AccessOutcome.Allow => this with { WouldBe = WouldAllow },
        AccessOutcome.Deny => this with { Outcome = AccessOutcome.Allow, Status = 0, WouldBe = WouldDeny },
        AccessOutcome.Reject or AccessOutcome.Anonymous => this with { Outcome = AccessOutcome.Forward, Status = 0, WouldBe = WouldDeny },
        _ => this,
    };

    /// <summary>
    /// An allowed request whose job names no Kong Consumer (with <c>consumer_claim</c> and not <c>consumer_optional</c>):
    /// denied 403 <see cref="ConsumerNotFound"/> when enforcing; in dry_run still allowed, marked as would-be denied
    /// (unless the policy already would deny, whose code stays).
    /// </summary>
    public AccessDecision WithoutConsumer()
    {
        if (Outcome != AccessOutcome.Allow) return this;
        if (!DryRun) return this with { Outcome = AccessOutcome.Deny, Status = 403, Code = ConsumerNotFound, Trace = null };
        return WouldBe == WouldDeny ? this : this with { WouldBe = WouldDeny, Code = ConsumerNotFound };
    }
}

/// <summary>The access decision as a pure function: no PDK, no I/O, no clock.</summary>
internal static class AccessDecider
{
    /// <summary>
    /// The enforce-mode decision for a request whose token was checked: a refused token is rejected, or continues as the
    /// anonymous Consumer when <paramref name="anonymous"/> is set (except when the keys are unavailable: that is
    /// Kong's trouble, not the client's, and answers 503); a valid one is allowed or denied by <paramref name="policy"/>.
    /// </summary>
    public static AccessDecision Decide(TokenResult token, CompiledPolicy policy, string? method, string? path, bool anonymous)
    {
        if (!token.IsValid)
        {
            return anonymous && token.Error != TokenError.KeysUnavailable
                ? new AccessDecision { Outcome = AccessOutcome.Anonymous, Code = token.ErrorCode, Token = token }
                : AccessDecision.Rejected(token);
        }
        var claims = token.Claims!;
        var verdict = policy.Evaluate(claims, method, path);
        if (verdict.Allowed)
            return new AccessDecision { Outcome = AccessOutcome.Allow, Rule = verdict.Rule, Token = token, Policy = verdict };
        return new AccessDecision
        {
            Outcome = AccessOutcome.Deny, Status = 403, Code = verdict.Code, Rule = verdict.Rule, Token = token, Policy = verdict,
            Trace = policy.Explain(claims, method, path).ToString(),
        };
    }
}
