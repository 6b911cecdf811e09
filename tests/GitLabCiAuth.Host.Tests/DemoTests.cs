using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;

namespace GitLabCiAuth.Host.Tests;

/// <summary>`gitlab-ci-auth demo`: the README's first command tells its story and exits 0, on both protocols.</summary>
public sealed class DemoTests
{
    [Theory]
    [InlineData("ProtoBuf:1")]
    [InlineData("MsgPack:1")]
    public async Task Demo_tells_the_story_and_exits_0(string protocol)
    {
        var r = await HostProcess.RunAsync("demo", "--protocol", protocol);
        Assert.True(r.ExitCode == 0, r.ToString());
        string[] expected =
        [
            @"deploy job on protected main\s+200",
            @"feature-branch job\s+403\s+answers 403 no_rule_matched",
            "answers 401 token_expired",
            "answers 401 audience_mismatch",
            "answers 401 token_missing",
            @"GitLab rotated its key: new kid\s+200",
            @"proxies \(dry_run: would deny, no_rule_matched\)",
            "X-GitLab-Project-Id: 16234",
            @"authorization: \(removed before proxying\)",
            @"two-issuer route: acme job from the first GitLab\s+200",
            @"two-issuer route: tools job from the second GitLab\s+200\s+proxies as gitlab-http://127\.0\.0\.1:\d+-project-16234",
            @"two-issuer route: an 'acme' job from the second GitLab\s+403\s+answers 403 no_rule_matched",
        ];
        foreach (var e in expected) Assert.Matches(e, r.Stdout);
        Assert.DoesNotContain("UNEXPECTED", r.Stdout);
    }
}
