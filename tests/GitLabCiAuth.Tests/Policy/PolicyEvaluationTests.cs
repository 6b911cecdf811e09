using GitLabCiAuth.Policy;
using static GitLabCiAuth.Tests.Policy.PolicyTestData;

namespace GitLabCiAuth.Tests.Policy;

public class PolicyEvaluationTests
{
    [Fact]
    public void AllowRuleMatchesAndIsReported()
    {
        var policy = Compile(Allow("acme-api", C("project_path", "acme/api")));
        var d = policy.Evaluate(Token());
        Assert.True(d.Allowed);
        Assert.Null(d.Code);
        Assert.Equal("acme-api", d.Rule);
    }

    [Fact]
    public void NoRuleMatched()
    {
        var policy = Compile(Allow("other", C("project_path", "other/*")));
        var d = policy.Evaluate(Token());
        Assert.False(d.Allowed);
        Assert.Equal(PolicyDecision.NoRuleMatched, d.Code);
        Assert.Equal("no_rule_matched", d.Code);
        Assert.Null(d.Rule);
    }

    [Fact]
    public void DenyWinsRegardlessOfOrder()
    {
        var policy = Compile(
            Allow("any-acme", C("namespace_path", "acme")),
            Deny("no-feature-branches", C("ref", "feature/**")),
            Deny("no-forks", C("project_path", "forks/**")));
        var feature = Token(o => o["ref"] = "feature/login/fix");

        var d = policy.Evaluate(feature);
        Assert.False(d.Allowed);
        Assert.Equal("policy_denied", d.Code);
        Assert.Equal("no-feature-branches", d.Rule);
        Assert.Equal("any-acme", policy.Evaluate(Token()).Rule);
    }

    [Fact]
    public void FirstMatchingRuleInConfigOrderDecides()
    {
        var policy = Compile(
            Deny("deny-a", C("ref", "main")),
            Deny("deny-b", C("ref", "m*")),
            Allow("allow-a", C("project_id", "4242")),
            Allow("allow-b", C("project_id", "*")));
        Assert.Equal("deny-a", policy.Evaluate(Token()).Rule);
        var dev = Token(o => o["ref"] = "develop");
        Assert.Equal("allow-a", policy.Evaluate(dev).Rule);
    }

    [Fact]
    public void AndAcrossClaimsOrAcrossPatterns()
    {
        var policy = Compile(Allow("deploy-prod",
            C("project_path", "acme/api", "acme/web"),
            C("ref", "main", "release/*"),
            C("environment", "production")));

        Assert.True(policy.Evaluate(Token()).Allowed);
        Assert.True(policy.Evaluate(Token(o => { o["project_path"] = "acme/web"; o["ref"] = "release/2.1"; })).Allowed);
        Assert.False(policy.Evaluate(Token(o => o["ref"] = "develop")).Allowed);          // one claim fails
        Assert.False(policy.Evaluate(Token(o => o["environment"] = "staging")).Allowed);  // another claim fails
        Assert.False(policy.Evaluate(Token(o => o.Remove("environment"))).Allowed);      // missing claim
    }

    [Fact]
    public void NegationRequiresPresentClaim()
    {
        var policy = Compile(Allow("not-prod", C("environment", "!production")));
        Assert.False(policy.Evaluate(Token()).Allowed);                                        // production
        Assert.True(policy.Evaluate(Token(o => o["environment"] = "staging")).Allowed);        // present, not matching
        Assert.False(policy.Evaluate(Token(o => o.Remove("environment"))).Allowed);            // missing: never matches
        Assert.False(policy.Evaluate(Token(o => o["environment"] = null)).Allowed);            // JSON null = absent
    }

    [Fact]
    public void NegatedDenyOnlyFiresWhenClaimPresent()
    {
        var policy = Compile(
            Deny("only-protected", C("ref_protected", "!true")),
            Allow("acme", C("namespace_path", "acme")));
        Assert.True(policy.Evaluate(Token()).Allowed);
        Assert.Equal("only-protected", policy.Evaluate(Token(o => o["ref_protected"] = "false")).Rule);
        Assert.True(policy.Evaluate(Token(o => o.Remove("ref_protected"))).Allowed);
    }

    [Fact]
    public void ArrayClaims()
    {
        var multiAud = Token(o => o["aud"] = new System.Text.Json.Nodes.JsonArray("https://kong.example.com", "https://vault.example.com"));
        Assert.True(Allows(multiAud, "aud", "https://vault.example.com"));
        Assert.True(Allows(multiAud, "aud", "nope", "https://kong.*"));
        Assert.False(Allows(multiAud, "aud", "https://nomad.example.com"));
        Assert.True(Allows(multiAud, "aud", "!https://nomad.*"));
        Assert.False(Allows(multiAud, "aud", "!https://vault.*"));
        Assert.False(Allows(multiAud, "aud", "!re:https://.*"));
        var emptyAud = Token(o => o["aud"] = new System.Text.Json.Nodes.JsonArray());
        Assert.False(Allows(emptyAud, "aud", "**"));
    }

    [Fact]
    public void TypedValues()
    {
        var claims = Token(o => o["custom_flag"] = true);
        Assert.True(Allows(claims, "runner_id", "5120"));        // JSON integer
        Assert.True(Allows(claims, "runner_id", "51*"));
        Assert.True(Allows(claims, "runner_id", @"re:\d+"));
        Assert.False(Allows(claims, "runner_id", "5120.0"));
        Assert.True(Allows(claims, "custom_flag", "true"));      // JSON boolean
        Assert.False(Allows(claims, "custom_flag", "True"));
        Assert.True(Allows(claims, "ref_protected", "true"));    // GitLab's string "true"
        Assert.False(Allows(Token(o => o["ref_protected"] = "false"), "ref_protected", "true"));
        Assert.True(Allows(claims, "project_id", "4242"));      // GitLab's string id
    }

    [Fact]
    public void MissingClaimNeverMatchesEvenWildcards()
    {
        var claims = Token(o => o.Remove("environment"));
        Assert.False(Allows(claims, "environment", "**"));
        Assert.False(Allows(claims, "environment", "re:.*"));
        Assert.False(Allows(claims, "environment", "!anything"));
        Assert.True(Allows(Token(o => o["environment"] = ""), "environment", "**"));
    }

    [Fact]
    public void MethodAndPathVirtualClaims()
    {
        var policy = Compile(
            Allow("read-only", C("project_path", "acme/*"), C("@method", "GET", "HEAD")),
            Allow("deploy-api", C("ref", "main"), C("@method", "POST"), C("@path", "/api/v1/deploy/**")));
        Assert.True(policy.UsesMethod);
        Assert.True(policy.UsesPath);

        var feature = Token(o => o["ref"] = "feature/x");
        Assert.Equal("read-only", policy.Evaluate(feature, "GET", "/anything").Rule);
        Assert.False(policy.Evaluate(feature, "POST", "/api/v1/deploy/prod").Allowed);
        Assert.Equal("deploy-api", policy.Evaluate(Token(), "POST", "/api/v1/deploy/prod").Rule);
        Assert.False(policy.Evaluate(Token(), "POST", "/api/v2/deploy/prod").Allowed);
        Assert.False(policy.Evaluate(Token(), "get", "/").Allowed);   // methods match case-sensitively
        Assert.False(policy.Evaluate(Token(), null, null).Allowed);    // absent: never matches
    }

    [Fact]
    public void NegatedVirtualClaimNeedsAValue()
    {
        var policy = Compile(Allow("not-delete", C("@method", "!DELETE")));
        Assert.True(policy.Evaluate(Token(), "GET", null).Allowed);
        Assert.False(policy.Evaluate(Token(), "DELETE", null).Allowed);
        Assert.False(policy.Evaluate(Token(), null, null).Allowed);
        Assert.True(policy.UsesMethod);
        Assert.False(policy.UsesPath);
    }

    [Fact]
    public void UsesFlagsAreFalseWithoutVirtualClaims()
    {
        var policy = Compile(Allow("any", C("project_id", "*")));
        Assert.False(policy.UsesMethod);
        Assert.False(policy.UsesPath);
        // A claim literally named "method" in the token is not the request method.
        Assert.False(Compile(Allow("m", C("method", "GET"))).UsesMethod);
    }

    [Fact]
    public void TrustEveryProjectExplicitly()
    {
        var policy = Compile(Allow("any-project", C("project_id", "*")));
        Assert.True(policy.Evaluate(Token()).Allowed);
        Assert.True(policy.Evaluate(Token(o => o["project_id"] = "1")).Allowed);
        Assert.False(policy.Evaluate(Token(o => o.Remove("project_id"))).Allowed);
    }

    [Fact]
    public void CompileFromPolicyConfig()
    {
        var config = new PolicyConfig { Rules = { Allow("a", C("ref", "main")) } };
        Assert.Equal(1, PolicyCompiler.Compile(config).RuleCount);
        Assert.True(PolicyCompiler.Compile(config).Evaluate(Token()).Allowed);
    }

    [Fact]
    public void EvaluateAllowPathDoesNotAllocate()
    {
        var policy = Compile(
            Deny("no-forks", C("project_path", "forks/**")),
            Deny("unprotected", C("ref_protected", "!true")),
            Allow("other", C("project_path", "other/*")),
            Allow("deploy", C("project_path", "acme/*", "acme/**/api"), C("ref", "release/*", "main"),
                C("environment", "!staging"), C("runner_id", "5120"), C("aud", "https://kong.*"),
                C("sub", @"re:project_path:acme/[^:]+:ref_type:branch:ref:(main|release/.+)"),
                C("@method", "GET", "POST"), C("@path", "/api/**")));
        var claims = Token();

        for (var i = 0; i < 5000; i++) Assert.True(policy.Evaluate(claims, "POST", "/api/v1/x").Allowed); // warm up (JIT tiers, regex DFA)
        // the least of three rounds: a one-off allocation by the runtime (a tier-up) must not decide the result
        long allocated = long.MaxValue;
        for (var round = 0; round < 3 && allocated != 0; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var allowed = 0;
            for (var i = 0; i < 1000; i++)
            {
                if (policy.Evaluate(claims, "POST", "/api/v1/x").Allowed) allowed++;
            }
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(1000, allowed);
        }
        Assert.Equal(0, allocated);
    }
}
