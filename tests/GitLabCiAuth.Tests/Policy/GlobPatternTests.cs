using GitLabCiAuth.Policy;

namespace GitLabCiAuth.Tests.Policy;

public class GlobPatternTests
{
    private static bool Match(string pattern, string value) => ClaimPattern.Parse(pattern).IsMatch(value);

    [Theory]
    [InlineData("acme/*", "acme/api", true)]
    [InlineData("acme/*", "acme/platform/api", false)]
    [InlineData("acme/*", "acme/", true)]
    [InlineData("acme/*", "acme", false)]
    [InlineData("acme/**", "acme/api", true)]
    [InlineData("acme/**", "acme/platform/api", true)]
    [InlineData("acme/**", "acme/", true)]
    [InlineData("acme/**", "acme", false)]
    [InlineData("acme/**", "acmecorp/api", false)]
    [InlineData("**/api", "acme/platform/api", true)]
    [InlineData("**/api", "acme/platform/api2", false)]
    [InlineData("acme/**/api", "acme/x/y/api", true)]
    [InlineData("acme/**/api", "acme//api", true)]
    [InlineData("acme/**/api", "acme/api", false)]
    [InlineData("*/api", "acme/api", true)]
    [InlineData("*/api", "acme/platform/api", false)]
    [InlineData("release/*", "release/1.2", true)]
    [InlineData("release/*", "release/1.2/hotfix", false)]
    [InlineData("release-?.?", "release-1.2", true)]
    [InlineData("release-?.?", "release-1.23", false)]
    [InlineData("a?b", "a/b", false)]
    [InlineData("*", "", true)]
    [InlineData("*", "anything-without-slash", true)]
    [InlineData("*", "a/b", false)]
    [InlineData("**", "", true)]
    [InlineData("**", "a/b/c", true)]
    [InlineData("***", "a/b/c", true)]
    [InlineData("v*.*.*", "v1.22.3", true)]
    [InlineData("v*.*.*", "v1.22", false)]
    [InlineData("*-prod", "eu-west-prod", true)]
    [InlineData("*-prod", "eu-west-prod-2", false)]
    [InlineData("**x*", "x/x", true)]        // '**' must be able to take over when the '*' is stuck at a '/'
    [InlineData("**/*.yml", "a/b/c.yml", true)]
    [InlineData("**/*.yml", "a/b.d/c", false)]
    [InlineData("*a*b", "xaybzb", true)]
    [InlineData("*a*b", "xayb/b", false)]
    public void Wildcards(string pattern, string value, bool expected) =>
        Assert.Equal(expected, Match(pattern, value));

    [Fact]
    public void PatternWithoutWildcardsIsExactOrdinal()
    {
        var p = ClaimPattern.Parse("acme/api");
        Assert.Equal("ExactPattern", p.GetType().Name);
        Assert.True(p.IsMatch("acme/api"));
        Assert.False(p.IsMatch("ACME/api"));
        Assert.False(p.IsMatch("acme/api "));
        Assert.False(p.IsMatch("acme/ap"));
    }

    [Fact]
    public void LongInputsDoNotBlowUp()
    {
        // Worst case for naive recursive globbing: many stars and a near-miss value.
        var pattern = string.Concat(Enumerable.Repeat("*a", 40)) + "*b";
        var value = new string('a', 5000);
        Assert.False(Match(pattern, value));
        Assert.True(Match(pattern, value + "b"));
        var dbl = string.Concat(Enumerable.Repeat("**a", 40)) + "**b";
        Assert.False(Match(dbl, string.Join("/", Enumerable.Repeat("aaaa", 1000))));
    }

    /// <summary>Every pattern up to 4 characters over {a,/,*,?} against every value up to 5 over {a,b,/}, vs a brute-force reference.</summary>
    [Fact]
    public void AgreesWithReferenceMatcherExhaustively()
    {
        var patterns = Strings("a/*?", 4);
        var values = Strings("ab/", 5);
        var failures = new List<string>();
        foreach (var p in patterns)
        {
            if (p.Length == 0) continue;
            var compiled = ClaimPattern.Parse(p);
            foreach (var v in values)
            {
                if (compiled.IsMatch(v) != Reference(p, 0, v, 0)) failures.Add($"'{p}' vs '{v}'");
            }
        }
        Assert.True(failures.Count == 0, string.Join(", ", failures.Take(20)));
    }

    [Fact]
    public void AgreesWithReferenceMatcherOnRandomLongerInputs()
    {
        var rng = new Random(20250101);
        const string patternAlphabet = "ab/*?*";
        const string valueAlphabet = "aab/";
        for (var n = 0; n < 20000; n++)
        {
            var p = RandomString(rng, patternAlphabet, 1 + rng.Next(9));
            var v = RandomString(rng, valueAlphabet, rng.Next(13));
            Assert.True(ClaimPattern.Parse(p).IsMatch(v) == Reference(p, 0, v, 0), $"'{p}' vs '{v}'");
        }
    }

    private static bool Reference(string p, int i, string t, int j)
    {
        if (i == p.Length) return j == t.Length;
        if (p[i] == '*')
        {
            var k = i;
            while (k < p.Length && p[k] == '*') k++;
            var crossesSlash = k - i >= 2;
            for (var end = j; end <= t.Length; end++)
            {
                if (Reference(p, k, t, end)) return true;
                if (end < t.Length && !crossesSlash && t[end] == '/') return false;
            }
            return false;
        }
        if (j == t.Length) return false;
        if (p[i] == '?') return t[j] != '/' && Reference(p, i + 1, t, j + 1);
        return p[i] == t[j] && Reference(p, i + 1, t, j + 1);
    }

    private static List<string> Strings(string alphabet, int maxLength)
    {
        var all = new List<string> { "" };
        var layer = new List<string> { "" };
        for (var len = 1; len <= maxLength; len++)
        {
            var next = new List<string>();
            foreach (var s in layer)
                foreach (var c in alphabet) next.Add(s + c);
            all.AddRange(next);
            layer = next;
        }
        return all;
    }

    private static string RandomString(Random rng, string alphabet, int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
        return new string(chars);
    }
}
