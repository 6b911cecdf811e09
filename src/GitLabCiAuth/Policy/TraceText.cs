using System.Text;
using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Policy;

/// <summary>
/// Renders claim values and patterns for trace lines: quoted, escaped and capped by <see cref="ClaimText"/>'s rule, and
/// redaction of anything that looks like a credential (JWTs, GitLab tokens, long high-entropy strings).
/// </summary>
internal static class TraceText
{
    public const int MaxValueChars = 64;
    public const int MaxArrayItems = 8;
    public const int MaxPatternChars = 64;
    public const int MaxPatterns = 8;
    public const string Redacted = "<redacted>";

    /// <summary>Token run (base64url alphabet) at least this long, with upper, lower and digits, is redacted.</summary>
    private const int OpaqueRunLength = 32;

    private static readonly string[] GitLabTokenPrefixes =
    [
        "glpat-", "gldt-", "glrt-", "glrtr-", "glptt-", "glcbt-", "gloas-", "glft-", "glimt-", "glagent-",
        "glsoat-", "glffct-", "glso-", "glwt-", "GR1348941",
    ];

    public static string FormatValue(in ClaimValue value)
    {
        if (!value.IsArray) return value.Single is null ? "(absent)" : FormatString(value.Single);
        var items = value.Items;
        var sb = new StringBuilder("[");
        var shown = Math.Min(items.Length, MaxArrayItems);
        for (var i = 0; i < shown; i++)
        {
            if (i > 0) sb.Append(',');
            AppendString(sb, items[i], MaxValueChars);
        }
        if (items.Length > shown) sb.Append(",...(+").Append(items.Length - shown).Append(')');
        return sb.Append(']').ToString();
    }

    public static string FormatString(string value)
    {
        var sb = new StringBuilder(Math.Min(value.Length, MaxValueChars) + 8);
        AppendString(sb, value, MaxValueChars);
        return sb.ToString();
    }

    public static void AppendPatterns(StringBuilder sb, IReadOnlyList<string> patterns)
    {
        sb.Append('[');
        var shown = Math.Min(patterns.Count, MaxPatterns);
        for (var i = 0; i < shown; i++)
        {
            if (i > 0) sb.Append(',');
            AppendQuoted(sb, patterns[i], MaxPatternChars); // config text: truncated, not redacted
        }
        if (patterns.Count > shown) sb.Append(",...(+").Append(patterns.Count - shown).Append(')');
        sb.Append(']');
    }

    private static void AppendString(StringBuilder sb, string value, int max)
    {
        if (LooksLikeSecret(value)) sb.Append(Redacted);
        else AppendQuoted(sb, value, max);
    }

    private static void AppendQuoted(StringBuilder sb, string value, int max)
    {
        sb.Append('"');
        ClaimText.AppendEscaped(sb, value, max);
        sb.Append('"');
    }

    /// <summary>Heuristic, erring on the side of redaction: JWT-like, a known GitLab token prefix, or a long opaque run.</summary>
    internal static bool LooksLikeSecret(string value)
    {
        var jwt = value.IndexOf("eyJ", StringComparison.Ordinal);
        if (jwt >= 0 && value.IndexOf('.', jwt) > jwt) return true;
        foreach (var prefix in GitLabTokenPrefixes)
        {
            if (value.Contains(prefix, StringComparison.Ordinal)) return true;
        }
        return HasOpaqueRun(value);
    }

    private static bool HasOpaqueRun(string value)
    {
        int start = 0;
        while (start < value.Length)
        {
            var end = start;
            bool upper = false, lower = false, digit = false;
            var separators = 0;
            while (end < value.Length && IsTokenChar(value[end]))
            {
                var c = value[end];
                if (c is >= 'A' and <= 'Z') upper = true;
                else if (c is >= 'a' and <= 'z') lower = true;
                else if (c is >= '0' and <= '9') digit = true;
                else separators++;
                end++;
            }
            var run = end - start;
            // Random base64url has ~3% '-'/'_'; word-like identifiers ("JIRA-123-fix-login") have many more.
            if (run >= OpaqueRunLength && upper && lower && digit && separators * 16 <= run) return true;
            start = end + 1;
        }
        return false;
    }

    private static bool IsTokenChar(char c) =>
        c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '+' or '=';
}
