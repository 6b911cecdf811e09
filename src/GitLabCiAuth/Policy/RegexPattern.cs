using System.Text.RegularExpressions;

namespace GitLabCiAuth.Policy;

/// <summary>
/// <c>re:</c> pattern: a .NET regex matched against the whole value (implicitly anchored) with the
/// non-backtracking engine, so matching is linear in the value's length whatever the expression.
/// </summary>
internal sealed class RegexPattern : ClaimPattern
{
    public const string Prefix = "re:";

    /// <summary>Longest accepted expression (after <c>re:</c>), in characters.</summary>
    public const int MaxExpressionLength = 512;

    private const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    private readonly Regex _regex;

    private RegexPattern(Regex regex, string source) : base(source) => _regex = regex;

    public static ClaimPattern Create(string expression, string source)
    {
        if (expression.Length > MaxExpressionLength)
            throw new FormatException($"regular expression is longer than {MaxExpressionLength} characters");
        try
        {
            // Parsing the bare expression first rejects unbalanced input such as "a)|(b", which could
            // otherwise escape the anchoring group below; errors then also point into what the user wrote.
            _ = new Regex(expression, Options);
            return new RegexPattern(new Regex(@"\A(?:" + expression + @")\z", Options), source);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new FormatException("invalid regular expression: " + e.Message, e);
        }
    }

    public override bool IsMatch(string value) => _regex.IsMatch(value);
}
