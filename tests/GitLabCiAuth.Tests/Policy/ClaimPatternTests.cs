using GitLabCiAuth.Claims;
using GitLabCiAuth.Policy;

namespace GitLabCiAuth.Tests.Policy;

public class ClaimPatternTests
{
    private static bool Match(string pattern, string value) => ClaimPattern.Parse(pattern).IsMatch(value);

    [Theory]
    [InlineData(@"\!important", "!important", true)]
    [InlineData(@"\!important", "important", false)]
    [InlineData(@"\re:main", "re:main", true)]
    [InlineData(@"\re:main", "main", false)]
    [InlineData(@"release\*", "release*", true)]
    [InlineData(@"release\*", "release-1", false)]
    [InlineData(@"a\?", "a?", true)]
    [InlineData(@"a\?", "ab", false)]
    [InlineData(@"a\\b", @"a\b", true)]
    [InlineData(@"feature/\**", "feature/*abc", true)]
    [InlineData(@"feature/\**", "feature/abc", false)]
    [InlineData(@"\a\b\c", "abc", true)] // escaping an ordinary character is harmless
    [InlineData(@"!\!x", "x", true)]
    [InlineData(@"!\!x", "!x", false)]
    public void Escapes(string pattern, string value, bool expected) => Assert.Equal(expected, Match(pattern, value));

    [Theory]
    [InlineData("re:main|release/.*", "main", true)]
    [InlineData("re:main|release/.*", "release/1.0", true)]
    [InlineData("re:main|release/.*", "xmain", false)]     // anchored around the whole alternation
    [InlineData("re:main|release/.*", "main2", false)]
    [InlineData("re:main|release/.*", "feature/release/1", false)]
    [InlineData("re:v\\d+\\.\\d+", "v1.22", true)]
    [InlineData("re:v\\d+\\.\\d+", "v1.22-rc", false)]
    [InlineData("re:(?i)MAIN", "main", true)]
    [InlineData("re:", "", true)]
    [InlineData("re:", "x", false)]
    [InlineData("re:a.c", "a\nc", false)] // '.' does not match a newline
    [InlineData("re:main", "main\n", false)] // \z, not $: a trailing newline does not slip through
    public void RegexIsAnchored(string pattern, string value, bool expected) => Assert.Equal(expected, Match(pattern, value));

    [Fact]
    public void CatastrophicBacktrackingRegexCompletes()
    {
        var p = ClaimPattern.Parse("re:(a+)+$");
        Assert.False(p.IsMatch("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
        Assert.True(p.IsMatch("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        Assert.False(p.IsMatch(new string('a', 100_000) + "b"));
        Assert.False(ClaimPattern.Parse("re:(a|aa)+(b|c)*d").IsMatch(new string('a', 5000) + "c"));
    }

    [Theory]
    [InlineData("!main", "develop", true)]
    [InlineData("!main", "main", false)]
    [InlineData("!release/*", "release/1.0", false)]
    [InlineData("!release/*", "release/1.0/x", true)]
    [InlineData("!re:main|master", "master", false)]
    [InlineData("!re:main|master", "trunk", true)]
    public void NegationOnSingleValues(string pattern, string value, bool expected) => Assert.Equal(expected, Match(pattern, value));

    [Fact]
    public void ArraysPositiveAnyElementNegatedNoElement()
    {
        var aud = ClaimValue.FromArray(["https://kong.example.com", "https://vault.example.com"]);
        var empty = ClaimValue.FromArray([]);

        Assert.True(ClaimPattern.Parse("https://vault.*").Matches(aud));
        Assert.False(ClaimPattern.Parse("https://nomad.*").Matches(aud));
        Assert.True(ClaimPattern.Parse("!https://nomad.*").Matches(aud));
        Assert.False(ClaimPattern.Parse("!https://vault.*").Matches(aud)); // one element matches -> negation fails
        Assert.False(ClaimPattern.Parse("**").Matches(empty));
        Assert.True(ClaimPattern.Parse("!x").Matches(empty)); // present, and no element matches
    }

    [Theory]
    [InlineData("", "empty pattern")]
    [InlineData("!", "must be followed by a pattern")]
    [InlineData("!!main", "double negation")]
    [InlineData(@"main\", "lone")]
    [InlineData("re:(unclosed", "invalid regular expression")]
    [InlineData("re:a)|(b", "invalid regular expression")] // would otherwise escape the anchoring group
    [InlineData(@"re:(a)\1", "invalid regular expression")]  // backreferences: not supported by NonBacktracking
    [InlineData("re:(?=a)a", "invalid regular expression")]  // lookarounds: not supported either
    public void InvalidPatternsAreRejected(string pattern, string reason)
    {
        var e = Assert.Throws<FormatException>(() => ClaimPattern.Parse(pattern));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void LengthLimits()
    {
        Assert.Contains("longer than 512", Assert.Throws<FormatException>(() => ClaimPattern.Parse("re:" + new string('a', 513))).Message);
        Assert.True(ClaimPattern.Parse("re:" + new string('a', 512)).IsMatch(new string('a', 512)));
        Assert.Contains("longer than 1024", Assert.Throws<FormatException>(() => ClaimPattern.Parse(new string('a', 1025))).Message);
    }

    [Fact]
    public void SourceIsThePatternAsWritten()
    {
        Assert.Equal(@"!release/\*", ClaimPattern.Parse(@"!release/\*").Source);
        Assert.Equal("re:x", ClaimPattern.Parse("re:x").ToString());
    }
}
