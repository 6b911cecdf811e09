using GitLabCiAuth.Policy;
using static GitLabCiAuth.Tests.Policy.PolicyTestData;

namespace GitLabCiAuth.Tests.Policy;

public class PolicyCompilerTests
{
    private static PolicyConfigException Fails(params RuleConfig[] rules) =>
        Assert.Throws<PolicyConfigException>(() => PolicyCompiler.Compile(rules));

    private static readonly RuleConfig AnyProject = Allow("any-project", C("project_id", "*"));

    [Fact]
    public void BadRegexNamesRuleAndClaim()
    {
        var e = Fails(AnyProject, Allow("ok", C("ref", "main")), Allow("deploy-prod", C("environment", "production"), C("ref", "main", "re:release/(")));
        Assert.Equal("rules[2].claims.ref", e.Field);
        Assert.StartsWith("rules[2] (name \"deploy-prod\") claim \"ref\": ", e.Message);
        Assert.Contains("claim \"ref\": invalid regular expression", e.Message);
        Assert.EndsWith("(pattern 2: \"re:release/(\")", e.Message);
        Assert.IsType<FormatException>(e.InnerException);
    }

    [Fact]
    public void UnsupportedRegexConstructIsAConfigError()
    {
        var e = Fails(Allow("r", C("sha", @"re:(.)\1")));
        Assert.Equal("rules[0].claims.sha", e.Field);
        Assert.Contains("rules[0] (name \"r\") claim \"sha\"", e.Message);
        Assert.Contains("invalid regular expression", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void EmptyRuleName(string? name)
    {
        var e = Fails(AnyProject, new RuleConfig { Name = name!, Claims = { ["ref"] = ["main"] } });
        Assert.Equal("rules[1].name", e.Field);
        Assert.StartsWith("rules[1]: ", e.Message);
        Assert.Contains("name", e.Message);
    }

    [Fact]
    public void DuplicateRuleNames()
    {
        var e = Fails(AnyProject, Allow("deploy", C("ref", "main")), Deny("deploy", C("ref", "x")));
        Assert.Equal("rules[2].name", e.Field);
        Assert.Contains("rules[2] (name \"deploy\")", e.Message);
        Assert.Contains("duplicate", e.Message);
        Assert.Contains("rules[1]", e.Message);
    }

    [Fact]
    public void NoAllowRuleExplainsHowToTrustEveryProject()
    {
        var e = Fails(Deny("no-forks", C("project_path", "forks/**")));
        Assert.Equal("rules", e.Field);
        Assert.Contains("no allow rule", e.Message);
        Assert.Contains("explicit", e.Message);
        Assert.Contains("project_id: [\"*\"]", e.Message);

        Assert.Equal("rules", Fails().Field);
        Assert.Equal("rules", Assert.Throws<PolicyConfigException>(() => PolicyCompiler.Compile((IReadOnlyList<RuleConfig>?)null)).Field);
    }

    [Theory]
    [InlineData("@foo")]
    [InlineData("@Method")]
    [InlineData("@")]
    public void UnknownVirtualClaim(string claim)
    {
        var e = Fails(Allow("ro", C("ref", "main"), C(claim, "GET")));
        Assert.Equal("rules[0].claims." + claim, e.Field);
        Assert.StartsWith($"rules[0] (name \"ro\") claim \"{claim}\": ", e.Message);
        Assert.Contains("@method", e.Message);
        Assert.Contains("@path", e.Message);
    }

    [Fact]
    public void EmptyPatternList()
    {
        var e = Fails(AnyProject, Allow("deploy", C("ref")));
        Assert.Equal("rules[1].claims.ref", e.Field);
        Assert.StartsWith("rules[1] (name \"deploy\") claim \"ref\": ", e.Message);
        Assert.Contains("at least one pattern", e.Message);

        var nullList = new RuleConfig { Name = "n", Claims = { ["ref"] = null! } };
        Assert.Equal("rules[0].claims.ref", Fails(nullList).Field);
    }

    [Fact]
    public void RuleWithoutClaims()
    {
        var e = Fails(AnyProject, new RuleConfig { Name = "empty" });
        Assert.Equal("rules[1].claims", e.Field);
        Assert.Contains("rules[1] (name \"empty\")", e.Message);
        Assert.Contains("at least one claim", e.Message);
        Assert.Equal("rules[0].claims", Fails(new RuleConfig { Name = "null", Claims = null! }).Field);
    }

    [Theory]
    [InlineData("", "empty pattern")]
    [InlineData("!!main", "double negation")]
    [InlineData(@"main\", "lone")]
    public void InvalidGlobOrNegation(string pattern, string reason)
    {
        var e = Fails(Allow("r", C("ref", "main", pattern)));
        Assert.Equal("rules[0].claims.ref", e.Field);
        Assert.StartsWith("rules[0] (name \"r\") claim \"ref\": ", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Contains($"(pattern 2: \"{pattern}\")", e.Message);
    }

    [Fact]
    public void InvalidEffect()
    {
        var e = Fails(Rule("r", "Deny", C("ref", "main")));
        Assert.Equal("rules[0].effect", e.Field);
        Assert.Contains("rules[0] (name \"r\")", e.Message);
        Assert.Contains("\"allow\" or \"deny\"", e.Message);
    }

    [Fact]
    public void EffectDefaultsToAllow()
    {
        var rule = new RuleConfig { Name = "default", Claims = { ["ref"] = ["main"] } };
        Assert.Equal("default", PolicyCompiler.Compile([rule]).Evaluate(Token()).Rule);
        rule.Effect = null!;
        Assert.True(PolicyCompiler.Compile([rule]).Evaluate(Token()).Allowed);
    }

    [Fact]
    public void NullRule()
    {
        var e = Fails(AnyProject, null!);
        Assert.Equal("rules[1]", e.Field);
    }
}
