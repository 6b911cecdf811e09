using System.Text;
using GitLabCiAuth.Identity;

namespace GitLabCiAuth.Tests.Identity;

public sealed class ProtectedHeadersTests
{
    private static readonly string LongName = "X-GitLab-" + new string('a', 70);   // a key of 79 bytes
    private readonly ProtectedHeaders _protected = new(["X-GitLab-Project-Id", "X-Consumer-ID", LongName]);

    [Theory]
    [InlineData("x-gitlab-project-id")]
    [InlineData("X_GitLab_Project_Id")]   // nginx keeps it apart, CGI-style upstreams read it as the same header
    [InlineData("X-GITLAB-PROJECT_ID")]
    [InlineData("x_consumer_id")]
    public void Names_that_read_as_a_protected_name_to_an_upstream_match(string name) =>
        Assert.True(_protected.Matches(Encoding.ASCII.GetBytes(name)));

    [Theory]
    [InlineData("x-gitlab-project-i")]    // one byte shorter
    [InlineData("x-gitlab-project-idx")]  // one byte longer
    [InlineData("x-gitlab-project-ix")]   // same length, another name
    [InlineData("x-consumer.id")]
    [InlineData("")]
    [InlineData("accept")]
    public void Other_names_do_not(string name) =>
        Assert.False(_protected.Matches(Encoding.ASCII.GetBytes(name)));

    [Fact]
    public void Names_of_64_bytes_or_more_are_compared_too()
    {
        Assert.True(_protected.Matches(Encoding.ASCII.GetBytes(LongName.ToUpperInvariant().Replace('-', '_'))));
        Assert.False(_protected.Matches(Encoding.ASCII.GetBytes(LongName + "b")));
        Assert.False(new ProtectedHeaders(["X-Short"]).Matches(Encoding.ASCII.GetBytes(LongName)));
    }
}
