using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary>
/// A compiled claim pattern. Syntax (parsed once by <see cref="Parse"/>):
/// <list type="bullet">
/// <item><c>!</c>&lt;pattern&gt; negates: the claim must be present and must not match (arrays: no element matches).</item>
/// <item><c>re:</c>&lt;regex&gt; is a .NET regular expression, implicitly anchored to the whole value, run with
/// <c>NonBacktracking</c> (linear time; no backreferences or lookarounds).</item>
/// <item>Anything else is a glob: <c>*</c> = any run of characters except <c>/</c>, <c>**</c> (or more stars) = any
/// run including <c>/</c>, <c>?</c> = one character except <c>/</c>. Both stars may match nothing, so <c>**</c>
/// alone matches every present value, even "", and <c>acme/**</c> matches <c>acme/x/y</c> and <c>acme/</c> but not
/// <c>acme</c>. A glob without wildcards is an exact ordinal comparison.</item>
/// <item>In globs and exact values <c>\</c> makes the next character literal: <c>\*</c>, <c>\?</c>, <c>\\</c>, and at the
/// start <c>\!</c> (a literal leading "!") and <c>\re:</c> (a literal leading "re:"). Regex bodies use regex escaping.</item>
/// </list>
/// A missing claim never matches, not even a negated pattern; an empty array matches no positive pattern and every negated one.
/// </summary>
public abstract class ClaimPattern
{
    /// <summary>Longest accepted pattern (any kind), in characters.</summary>
    public const int MaxPatternLength = 1024;

    public const char Negation = '!';
    public const char Escape = '\\';

    /// <summary>Prefixed pattern kinds; a new kind is a new class plus one line here.</summary>
    private static readonly (string Prefix, Func<string, string, ClaimPattern> Create)[] PrefixedKinds =
    [
        (RegexPattern.Prefix, RegexPattern.Create),
    ];

    protected ClaimPattern(string source) => Source = source;

    /// <summary>The pattern as written in the config (used in traces).</summary>
    public string Source { get; }

    /// <summary>Whether a single (present) string value matches.</summary>
    public abstract bool IsMatch(string value);

    /// <summary>Whether a present claim value matches: a single string directly, an array when any element matches.</summary>
    public virtual bool Matches(in ClaimValue value)
    {
        if (!value.IsArray)
        {
            var single = value.Single;
            return single is not null && IsMatch(single);
        }
        foreach (var item in value.Items)
        {
            if (IsMatch(item)) return true;
        }
        return false;
    }

    /// <summary>Compiles one pattern. Throws <see cref="FormatException"/> with a user-facing reason when invalid.</summary>
    public static ClaimPattern Parse(string pattern)
    {
        if (pattern is null) throw new FormatException("a pattern is null");
        if (pattern.Length == 0)
            throw new FormatException("empty pattern (to match an empty value use \"re:\" with an empty expression)");
        if (pattern.Length > MaxPatternLength)
            throw new FormatException($"pattern is longer than {MaxPatternLength} characters");

        if (pattern[0] != Negation) return ParsePositive(pattern, pattern);

        var body = pattern.Substring(1);
        if (body.Length == 0) throw new FormatException("\"!\" must be followed by a pattern");
        if (body[0] == Negation)
            throw new FormatException("double negation \"!!\" is not allowed (for a literal leading \"!\" write \"!\\!...\")");
        return new NegatedPattern(ParsePositive(body, pattern), pattern);
    }

    private static ClaimPattern ParsePositive(string body, string source)
    {
        foreach (var (prefix, create) in PrefixedKinds)
        {
            if (body.StartsWith(prefix, StringComparison.Ordinal))
                return create(body.Substring(prefix.Length), source);
        }
        return GlobPattern.Create(body, source);
    }

    public override string ToString() => Source;
}
