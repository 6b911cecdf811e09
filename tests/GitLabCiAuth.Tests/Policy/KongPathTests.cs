using GitLabCiAuth.Policy;

namespace GitLabCiAuth.Tests.Policy;

public sealed class KongPathTests
{
    [Theory]
    [InlineData("/api/v1/deploy", "/api/v1/deploy")]
    [InlineData("/api//v1///deploy", "/api/v1/deploy")]
    [InlineData("/api/./v1/../v2/deploy", "/api/v2/deploy")]
    [InlineData("/../../etc/passwd", "/etc/passwd")]
    [InlineData("/api/v1/", "/api/v1/")]
    [InlineData("/api/v1/..", "/api/")]
    [InlineData("/%61pi/%7Euser/%2d", "/api/~user/-")]          // unreserved characters are decoded
    [InlineData("/api%2fadmin", "/api%2Fadmin")]                // %2F stays encoded (upper-cased)
    [InlineData("/api;x=1/admin", "/api;x=1/admin")]            // ';' parameters stay
    [InlineData("/a/%2e%2e/b", "/b")]                           // an encoded dot segment is a dot segment once decoded
    [InlineData("/", "/")]
    public void Normalises_like_Kong(string raw, string expected) => Assert.Equal(expected, KongPath.Normalize(raw));
}
