using GitLabCiAuth.Plugin;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;
using static GitLabCiAuth.Tests.Policy.PolicyTestData;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>The access decision alone: a token result and a compiled policy in, a decision out. No Kong, no PDK.</summary>
public class AccessDecisionTests
{
    private static readonly CompiledPolicy Policy = Compile(
        Deny("no-forks", C("project_path", "forks/*")),
        Allow("acme-main", C("project_path", "acme/*"), C("ref", "main")));

    private static TokenResult Valid(string projectPath = "acme/api") =>
        TokenResult.Success(Token(o => o["project_path"] = projectPath), DateTimeOffset.UnixEpoch.AddHours(2), DateTimeOffset.UnixEpoch,
            "jti-1", "kid-1", "https://gitlab.example.com", "https://kong.example.com", "hash-1");

    private static TokenResult Failed(TokenError error) => TokenResult.Failure(error, "why", retryAfterSeconds: 30);

    [Fact]
    public void AValidTokenTheRulesAllowIsAllowedWithItsRule()
    {
        var token = Valid();
        var d = AccessDecider.Decide(token, Policy, null, null, anonymous: false);
        Assert.Equal(AccessOutcome.Allow, d.Outcome);
        Assert.Equal(0, d.Status);
        Assert.Null(d.Code);
        Assert.Equal("acme-main", d.Rule);
        Assert.Null(d.Trace);
        Assert.Null(d.WouldBe);
        Assert.False(d.DryRun);
        Assert.Same(token, d.Token);
        Assert.True(d.Policy!.Value.Allowed);
    }

    [Fact]
    public void ADenyRuleDeniesWith403PolicyDeniedAndATrace()
    {
        var d = AccessDecider.Decide(Valid("forks/api"), Policy, null, null, anonymous: false);
        Assert.Equal(AccessOutcome.Deny, d.Outcome);
        Assert.Equal(403, d.Status);
        Assert.Equal(PolicyDecision.PolicyDenied, d.Code);
        Assert.Equal("no-forks", d.Rule);
        Assert.False(string.IsNullOrEmpty(d.Trace));
        Assert.Equal("this job is denied by the route's policy", d.Message);
    }

    [Fact]
    public void NoMatchingRuleDeniesWith403NoRuleMatched()
    {
        var d = AccessDecider.Decide(Valid("other/api"), Policy, null, null, anonymous: false);
        Assert.Equal(AccessOutcome.Deny, d.Outcome);
        Assert.Equal(403, d.Status);
        Assert.Equal(PolicyDecision.NoRuleMatched, d.Code);
        Assert.Null(d.Rule);
        Assert.Equal("no rule of the route's policy allows this job", d.Message);
    }

    [Fact]
    public void TheMethodAndPathReachThePolicy()
    {
        var policy = Compile(Allow("get-only", C("project_path", "acme/*"), C("@method", "GET"), C("@path", "/v1/*")));
        Assert.Equal(AccessOutcome.Allow, AccessDecider.Decide(Valid(), policy, "GET", "/v1/x", anonymous: false).Outcome);
        Assert.Equal(AccessOutcome.Deny, AccessDecider.Decide(Valid(), policy, "POST", "/v1/x", anonymous: false).Outcome);
        Assert.Equal(AccessOutcome.Deny, AccessDecider.Decide(Valid(), policy, "GET", "/v2/x", anonymous: false).Outcome);
    }

    [Theory]
    [InlineData(TokenError.TokenMissing, 401, "token_missing", "a GitLab CI ID token is required")]
    [InlineData(TokenError.TokenMalformed, 401, "token_malformed", "invalid GitLab CI ID token: why")]
    [InlineData(TokenError.TokenExpired, 401, "token_expired", "invalid GitLab CI ID token: why")]
    [InlineData(TokenError.SignatureInvalid, 401, "signature_invalid", "invalid GitLab CI ID token: why")]
    [InlineData(TokenError.AudienceMismatch, 401, "audience_mismatch", "invalid GitLab CI ID token: why")]
    [InlineData(TokenError.KeysUnavailable, 503, "keys_unavailable", "the GitLab signing keys are unavailable; retry later")]
    public void ARefusedTokenIsRejectedWithItsCodeAndStatus(TokenError error, int status, string code, string message)
    {
        var token = Failed(error);
        var d = AccessDecider.Decide(token, Policy, null, null, anonymous: false);
        Assert.Equal(AccessOutcome.Reject, d.Outcome);
        Assert.Equal(status, d.Status);
        Assert.Equal(code, d.Code);
        Assert.Equal(message, d.Message);
        Assert.Same(token, d.Token);
        Assert.Null(d.Policy);
        Assert.Null(d.Rule);
    }

    [Theory]
    [InlineData(TokenError.TokenMissing)]
    [InlineData(TokenError.TokenExpired)]
    [InlineData(TokenError.SignatureInvalid)]
    public void WithAnonymousARefusedTokenContinuesAsTheAnonymousConsumer(TokenError error)
    {
        var d = AccessDecider.Decide(Failed(error), Policy, null, null, anonymous: true);
        Assert.Equal(AccessOutcome.Anonymous, d.Outcome);
        Assert.Equal(0, d.Status);
        Assert.Equal(TokenErrors.Code(error), d.Code);
    }

    [Fact]
    public void WithAnonymousUnavailableKeysStillAnswer503()
    {
        var d = AccessDecider.Decide(Failed(TokenError.KeysUnavailable), Policy, null, null, anonymous: true);
        Assert.Equal(AccessOutcome.Reject, d.Outcome);
        Assert.Equal(503, d.Status);
    }

    [Fact]
    public void AnonymousDoesNotChangeAValidTokensDecision()
    {
        Assert.Equal(AccessOutcome.Allow, AccessDecider.Decide(Valid(), Policy, null, null, anonymous: true).Outcome);
        Assert.Equal(AccessOutcome.Deny, AccessDecider.Decide(Valid("forks/x"), Policy, null, null, anonymous: true).Outcome);
    }

    [Fact]
    public void DryRunAllowIsAnAllowThatWouldBeAllowed()
    {
        var enforce = AccessDecider.Decide(Valid(), Policy, null, null, anonymous: false);
        var d = enforce.AsDryRun();
        Assert.Equal(AccessOutcome.Allow, d.Outcome);
        Assert.Equal(AccessDecision.WouldAllow, d.WouldBe);
        Assert.True(d.DryRun);
        Assert.Null(d.Code);
        Assert.Equal(enforce.Rule, d.Rule);
    }

    [Fact]
    public void DryRunDenyLetsTheRequestThroughAndKeepsTheReason()
    {
        var enforce = AccessDecider.Decide(Valid("forks/api"), Policy, null, null, anonymous: false);
        var d = enforce.AsDryRun();
        Assert.Equal(AccessOutcome.Allow, d.Outcome);
        Assert.Equal(0, d.Status);
        Assert.Equal(AccessDecision.WouldDeny, d.WouldBe);
        Assert.Equal(PolicyDecision.PolicyDenied, d.Code);
        Assert.Equal("no-forks", d.Rule);
        Assert.Equal(enforce.Trace, d.Trace);
    }

    [Theory]
    [InlineData(TokenError.TokenMissing, false)]
    [InlineData(TokenError.SignatureInvalid, false)]
    [InlineData(TokenError.KeysUnavailable, false)]
    [InlineData(TokenError.TokenExpired, true)] // dry_run never continues as the anonymous Consumer
    [InlineData(TokenError.KeysUnavailable, true)]
    public void DryRunRejectForwardsWithoutIdentityAndWouldDeny(TokenError error, bool anonymous)
    {
        var d = AccessDecider.Decide(Failed(error), Policy, null, null, anonymous).AsDryRun();
        Assert.Equal(AccessOutcome.Forward, d.Outcome);
        Assert.Equal(0, d.Status);
        Assert.Equal(AccessDecision.WouldDeny, d.WouldBe);
        Assert.Equal(TokenErrors.Code(error), d.Code);
    }

    [Fact]
    public void AFullHeaderViewIsRefusedInEveryMode()
    {
        var token = Failed(TokenError.TokenMalformed);
        var d = AccessDecision.Refuse(token);
        Assert.Equal(AccessOutcome.Reject, d.Outcome);
        Assert.Equal(401, d.Status);
        Assert.Equal(d, d.AsDryRun());
    }

    [Fact]
    public void AnEarlierCredentialStandsInEveryMode()
    {
        var d = AccessDecision.Defer;
        Assert.Equal(AccessOutcome.Defer, d.Outcome);
        Assert.Null(d.Token);
        Assert.Equal(d, d.AsDryRun());
    }

    [Fact]
    public void AsDryRunTwiceIsAsDryRunOnce()
    {
        var once = AccessDecider.Decide(Valid("forks/api"), Policy, null, null, anonymous: false).AsDryRun();
        Assert.Equal(once, once.AsDryRun());
    }

    [Fact]
    public void WithoutAConsumerEnforceDenies403ConsumerNotFound()
    {
        var d = AccessDecider.Decide(Valid(), Policy, null, null, anonymous: false).WithoutConsumer();
        Assert.Equal(AccessOutcome.Deny, d.Outcome);
        Assert.Equal(403, d.Status);
        Assert.Equal(AccessDecision.ConsumerNotFound, d.Code);
        Assert.Equal("acme-main", d.Rule);
        Assert.Equal("no Kong consumer for this job", d.Message);
    }

    [Fact]
    public void WithoutAConsumerDryRunWouldDenyUnlessThePolicyAlreadyWould()
    {
        var allowed = AccessDecider.Decide(Valid(), Policy, null, null, anonymous: false).AsDryRun().WithoutConsumer();
        Assert.Equal(AccessOutcome.Allow, allowed.Outcome);
        Assert.Equal(AccessDecision.WouldDeny, allowed.WouldBe);
        Assert.Equal(AccessDecision.ConsumerNotFound, allowed.Code);

        var denied = AccessDecider.Decide(Valid("forks/api"), Policy, null, null, anonymous: false).AsDryRun().WithoutConsumer();
        Assert.Equal(AccessOutcome.Allow, denied.Outcome);
        Assert.Equal(AccessDecision.WouldDeny, denied.WouldBe);
        Assert.Equal(PolicyDecision.PolicyDenied, denied.Code);
    }
}
