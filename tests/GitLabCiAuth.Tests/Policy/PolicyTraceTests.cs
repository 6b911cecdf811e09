using GitLabCiAuth.Policy;
using static GitLabCiAuth.Tests.Policy.PolicyTestData;

namespace GitLabCiAuth.Tests.Policy;

public class PolicyTraceTests
{
    [Fact]
    public void NoRuleMatchedListsFirstFailingClaimOfEachAllowRule()
    {
        var policy = Compile(
            Allow("deploy-prod", C("project_path", "acme/*"), C("ref", "main"), C("environment", "production")),
            Deny("no-forks", C("project_path", "forks/**")),
            Allow("any-ro", C("@method", "GET", "HEAD")));
        var claims = Token(o => o["ref"] = "feature/x");

        var trace = policy.Explain(claims, "POST", "/deploy");
        Assert.Equal(policy.Evaluate(claims, "POST", "/deploy"), trace.Decision);
        Assert.Equal("no_rule_matched", trace.Decision.Code);
        Assert.Equal(2, trace.Entries.Count);
        Assert.Equal(("deploy-prod", "ref", "\"feature/x\"", false), (trace.Entries[0].Rule, trace.Entries[0].Claim, trace.Entries[0].Value, trace.Entries[0].Matched));
        Assert.Equal(["GET", "HEAD"], trace.Entries[1].Patterns);
        Assert.Equal(
            "no_rule_matched: deploy-prod: ref=\"feature/x\" !~ [\"main\"]; any-ro: @method=\"POST\" !~ [\"GET\",\"HEAD\"]",
            trace.ToString());
    }

    [Fact]
    public void PolicyDeniedShowsTheDenyRuleConditions()
    {
        var policy = Compile(
            Allow("any-project", C("project_id", "*")),
            Deny("no-forks", C("project_path", "forks/**", "evil/**"), C("ref", "!release/*")));
        var claims = Token(o => o["project_path"] = "evil/api");

        var trace = policy.Explain(claims);
        Assert.Equal("policy_denied", trace.Decision.Code);
        Assert.Equal("no-forks", trace.Decision.Rule);
        Assert.Equal(
            "policy_denied: no-forks: project_path=\"evil/api\" ~ [\"forks/**\",\"evil/**\"], ref=\"main\" ~ [\"!release/*\"]",
            trace.ToString());
    }

    [Fact]
    public void AllowedShowsTheAllowRule()
    {
        var policy = Compile(Allow("runner", C("runner_id", "5120"), C("@path", "/api/**")));
        var trace = policy.Explain(Token(), null, "/api/v1");
        Assert.True(trace.Decision.Allowed);
        Assert.Equal("allowed: runner: runner_id=\"5120\" ~ [\"5120\"], @path=\"/api/v1\" ~ [\"/api/**\"]", trace.ToString());
    }

    [Fact]
    public void AbsentClaimsAndArrays()
    {
        var policy = Compile(
            Allow("env", C("environment", "production")),
            Allow("aud", C("aud", "https://nomad.*")),
            Allow("path", C("@path", "/x")));
        var claims = Token(o =>
        {
            o.Remove("environment");
            o["aud"] = new System.Text.Json.Nodes.JsonArray("https://kong.example.com", "https://vault.example.com");
        });
        Assert.Equal(
            "no_rule_matched: env: environment=(absent) !~ [\"production\"]; " +
            "aud: aud=[\"https://kong.example.com\",\"https://vault.example.com\"] !~ [\"https://nomad.*\"]; " +
            "path: @path=(absent) !~ [\"/x\"]",
            policy.Explain(claims).ToString());
        Assert.Null(policy.Explain(claims).Entries[0].Value);
    }

    [Fact]
    public void LongValuesAreTruncatedAndQuotesEscaped()
    {
        var policy = Compile(Allow("r", C("ref", "main")));
        var longRef = "feature/" + new string('x', 500);
        var entry = policy.Explain(Token(o => o["ref"] = longRef)).Entries[0];
        Assert.Equal("\"feature/" + new string('x', 56) + "…(+444)\"", entry.Value);

        var quoted = policy.Explain(Token(o => o["ref"] = "a\"b\\c\nd")).Entries[0];
        Assert.Equal("\"a\\\"b\\\\c\\u000ad\"", quoted.Value);

        var manyItems = new System.Text.Json.Nodes.JsonArray();
        for (var i = 0; i < 20; i++) manyItems.Add("g" + i);
        var arr = Compile(Allow("r", C("groups", "x"))).Explain(Token(o => o["groups"] = manyItems)).Entries[0];
        Assert.Equal("[\"g0\",\"g1\",\"g2\",\"g3\",\"g4\",\"g5\",\"g6\",\"g7\",...(+12)]", arr.Value);
    }

    [Theory]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")]             // a JWT
    [InlineData("/hooks/eyJhbGciOiJIUzI1NiJ9.e30.abc")]                           // a JWT inside a path
    [InlineData("/api?token=glpat-AbCdEf1234567890xyz")]                          // a GitLab token
    [InlineData("/callback/Zk9xR2pVb3lMMW1hN2Q4V0F4cXlSb2hFbkd2c1dUdWQ")]         // long opaque base64url
    public void TokenShapedValuesAreRedacted(string path)
    {
        var policy = Compile(Allow("r", C("@path", "/nope")));
        var trace = policy.Explain(Token(), null, path);
        Assert.Equal("no_rule_matched: r: @path=<redacted> !~ [\"/nope\"]", trace.ToString());
    }

    [Theory]
    [InlineData("7c9e6f4b1a2d3e5f60718293a4b5c6d7e8f90123")]   // commit sha
    [InlineData("2b3f1c1e-8d4c-4d7e-9a55-0f6c3b2a1d90")]       // jti (uuid)
    [InlineData("feature/JIRA-1234-fix-the-login-page-for-sso-users")]
    [InlineData("gitlab.example.com/acme/api//.gitlab-ci.yml@refs/heads/main")]
    public void OrdinaryValuesAreNotRedacted(string value)
    {
        var entry = Compile(Allow("r", C("v", "nope"))).Explain(Token(o => o["v"] = value)).Entries[0];
        Assert.StartsWith("\"" + value[..Math.Min(value.Length, 20)], entry.Value);
    }

    [Fact]
    public void RenderingIsBoundedForManyRules()
    {
        var rules = new List<RuleConfig>();
        for (var i = 0; i < 40; i++) rules.Add(Allow("rule-" + i, C("project_id", "x" + i)));
        var text = PolicyCompiler.Compile(rules).Explain(Token()).ToString();
        Assert.Contains("rule-15:", text);
        Assert.DoesNotContain("rule-16:", text);
        Assert.EndsWith("; ... (+24 more)", text);
    }

    [Fact]
    public void ExplainAgreesWithEvaluate()
    {
        var policy = Compile(
            Deny("no-feature", C("ref", "feature/**")),
            Allow("prod", C("environment", "production"), C("ref_protected", "true")),
            Allow("reads", C("@method", "GET")));
        var inputs = new[]
        {
            (Token(), "POST"),
            (Token(o => o["ref"] = "feature/a"), "GET"),
            (Token(o => o["environment"] = "dev"), "GET"),
            (Token(o => o["environment"] = "dev"), "PUT"),
        };
        foreach (var (claims, method) in inputs)
            Assert.Equal(policy.Evaluate(claims, method, null), policy.Explain(claims, method, null).Decision);
    }
}
