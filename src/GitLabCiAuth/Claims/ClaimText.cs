using System.Globalization;
using System.Text;

namespace GitLabCiAuth.Claims;

/// <summary>
/// The one rule for putting a token's text (claim values, <c>kid</c>, <c>jti</c>...) where people or other programs
/// read it. Claim values are chosen by whoever controls the project, branch or environment names, so they may carry
/// line breaks, terminal controls or bidi overrides that forge log lines or hide text.
/// <list type="bullet">
/// <item>Log lines, the <c>gitlab_ci</c> log record and policy traces: <see cref="Escape"/>: <c>\</c> and <c>"</c>
/// are escaped, every unsafe character (C0/C1 controls, DEL, U+2028/U+2029, bidi controls) becomes <c>\uXXXX</c>, and
/// the value is capped with a visible marker (<c>…(+N)</c>: N characters were left out).</item>
/// <item>Upstream headers, credential ids and group names: a value is sent exactly as the token has it or not at all
/// (<see cref="IsHeaderSafe"/>); it is never cut or cleaned, since a shortened or cleaned value can name something
/// else (a cut <c>project_path</c> may be another project's).</item>
/// </list>
/// </summary>
public static class ClaimText
{
    /// <summary>Cap of one value in log lines and the log record (characters of the original value).</summary>
    public const int MaxLogChars = 256;

    /// <summary>Longest value sent upstream as a header, credential id or group name.</summary>
    public const int MaxHeaderChars = 512;

    /// <summary>Characters never written as they are: controls, line and paragraph separators, bidi controls.</summary>
    public static bool IsUnsafe(char c) =>
        c < 0x20 || c is >= '\u007F' and <= '\u009F'
        || c is '\u2028' or '\u2029'
        || c is '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');

    private static bool NeedsEscape(char c) => c is '\\' or '"' || IsUnsafe(c);

    /// <summary>The value as it may appear in a log line or the log record; the same string when nothing changes.</summary>
    public static string Escape(string value, int max = MaxLogChars)
    {
        if (value.Length <= max && !value.AsSpan().ContainsAny(s_needsEscape) && !HasUnsafe(value)) return value;
        var sb = new StringBuilder(Math.Min(value.Length, max) + 16);
        AppendEscaped(sb, value, max);
        return sb.ToString();
    }

    /// <summary>Appends <see cref="Escape"/>'s form of <paramref name="value"/>.</summary>
    public static void AppendEscaped(StringBuilder sb, string value, int max = MaxLogChars)
    {
        int length = value.Length;
        if (length > max)
        {
            length = max;
            if (length > 0 && char.IsHighSurrogate(value[length - 1])) length--; // never split a surrogate pair
        }
        for (int i = 0; i < length; i++)
        {
            char c = value[i];
            if (!NeedsEscape(c)) sb.Append(c);
            else if (c is '\\' or '"') sb.Append('\\').Append(c);
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        if (length < value.Length) sb.Append("…(+").Append(value.Length - length).Append(')');
    }

    /// <summary>True when <paramref name="value"/> may be sent upstream exactly as it is: not empty, within the cap, no unsafe character.</summary>
    public static bool IsHeaderSafe(string value, int max = MaxHeaderChars) =>
        value.Length > 0 && value.Length <= max && !HasUnsafe(value);

    private static bool HasUnsafe(string value)
    {
        // printable ASCII is never unsafe: most values are, and the vectorized range check settles them at once
        if (!value.AsSpan().ContainsAnyExceptInRange(' ', '~')) return false;
        foreach (char c in value)
            if (IsUnsafe(c)) return true;
        return false;
    }

    private static readonly System.Buffers.SearchValues<char> s_needsEscape = System.Buffers.SearchValues.Create("\\\"");
}
