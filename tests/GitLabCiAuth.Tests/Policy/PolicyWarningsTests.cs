using GitLabCiAuth.Policy;
using static GitLabCiAuth.Tests.Policy.PolicyTestData;

namespace GitLabCiAuth.Tests.Policy;

public sealed class PolicyWarningsTests
{
    private static readonly string[] DefaultRequired = ["project_id", "namespace_id", "pipeline_id", "job_id", "runner_id", "ref", "ref_type"];

    private static IReadOnlyList<string> Warn(params RuleConfig[] rules) => PolicyWarnings.Find(rules, DefaultRequired);

    [Fact]
    public void A_deny_rule_on_a_claim_that_may_be_absent_is_reported()
    {
        var w = Assert.Single(Warn(Allow("any", C("project_id", "*")), Deny("no-prod", C("environment", "production"))));
        Assert.Contains("rules[1] (name \"no-prod\")", w);
        Assert.Contains("\"environment\", which is not in required_claims", w);
    }

    [Fact]
    public void A_deny_rule_on_required_and_request_claims_is_quiet()
    {
        Assert.Empty(Warn(Allow("any", C("project_id", "*")), Deny("forks", C("ref", "feature/*"), C("@method", "DELETE"))));
        Assert.Empty(PolicyWarnings.Find([Allow("any", C("project_id", "*")), Deny("no-prod", C("environment", "production"))],
            [.. DefaultRequired, "environment"]));
    }

    [Fact]
    public void A_negated_pattern_on_an_often_absent_claim_is_reported()
    {
        var w = Assert.Single(Warn(Allow("not-prod", C("deployment_tier", "!production"))));
        Assert.Contains("\"!production\" on claim \"deployment_tier\", which GitLab often leaves out", w);
        Assert.Empty(Warn(Allow("not-main", C("ref", "!main"))));
    }

    [Theory]
    [InlineData("acme/**/api", "acme/api")]
    [InlineData("**/billing", "billing")]
    [InlineData("!acme/**/legacy", "acme/legacy")]
    public void A_double_star_between_slashes_says_what_it_does_not_match(string pattern, string missed)
    {
        var w = Assert.Single(Warn(Allow("r", C("project_path", pattern))));
        Assert.Contains($"does not match \"{missed}\"", w);
    }

    [Theory]
    [InlineData("acme/**")]
    [InlineData("acme/*/api")]
    [InlineData("re:^acme/(.+/)?api$")]
    public void Other_patterns_are_quiet(string pattern) => Assert.Empty(Warn(Allow("r", C("project_path", pattern))));
}
