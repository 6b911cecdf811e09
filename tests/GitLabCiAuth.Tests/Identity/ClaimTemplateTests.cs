using GitLabCiAuth.Claims;
using GitLabCiAuth.Identity;

namespace GitLabCiAuth.Tests.Identity;

public sealed class ClaimTemplateTests
{
    private static ClaimSet Claims(params (string Name, string Value)[] values) =>
        ClaimSet.FromValues(values.Select(v => KeyValuePair.Create(v.Name, ClaimValue.FromString(v.Value))));

    [Theory]
    [InlineData("https://GitLab.Example.com", "gitlab-gitlab.example.com-project-16234")]
    [InlineData("https://gitlab.example.com:8443/sub", "gitlab-gitlab.example.com-project-16234")]
    public void Iss_host_is_the_issuer_urls_host_in_lower_case(string iss, string expected)
    {
        var t = ClaimTemplate.Parse("gitlab-{iss_host}-project-{project_id}");
        Assert.True(t.NamesIssuer);
        Assert.Equal(expected, t.Render(Claims(("iss", iss), ("project_id", "16234"))));
    }

    [Fact]
    public void A_template_renders_nothing_from_a_missing_or_unfit_value()
    {
        var t = ClaimTemplate.Parse("gitlab-{iss_host}-project-{project_id}");
        Assert.Null(t.Render(Claims(("project_id", "16234"))));                               // no iss
        Assert.Null(t.Render(Claims(("iss", "not a url"), ("project_id", "16234"))));
        Assert.Null(t.Render(Claims(("iss", "https://a.example"), ("project_id", "1\n2"))));  // never cleaned into another id
        Assert.False(ClaimTemplate.Parse("gitlab-project-{project_id}").NamesIssuer);
        Assert.True(ClaimTemplate.Parse("{iss}/{project_id}").NamesIssuer);
    }
}
