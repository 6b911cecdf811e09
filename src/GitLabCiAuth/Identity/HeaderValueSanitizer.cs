namespace GitLabCiAuth.Identity;

/// <summary>
/// Makes a claim value safe as an HTTP header value: control characters (C0, DEL, C1, and the Unicode
/// line/paragraph separators) are dropped so no value can split a header, and the length is bounded.
/// Returns the same string when nothing needs changing (the common case: no allocation).
/// </summary>
public static class HeaderValueSanitizer
{
    public const int MaxLength = 512;

    public static string Sanitize(string value, int maxLength = MaxLength)
    {
        bool clean = value.Length <= maxLength;
        if (clean)
            foreach (char c in value)
                if (IsUnsafe(c)) { clean = false; break; }
        if (clean) return value;

        var sb = new System.Text.StringBuilder(Math.Min(value.Length, maxLength));
        foreach (char c in value)
        {
            if (sb.Length >= maxLength) break;
            if (!IsUnsafe(c)) sb.Append(c);
        }
        // never end on half a surrogate pair
        if (sb.Length > 0 && char.IsHighSurrogate(sb[^1])) sb.Length--;
        return sb.ToString();
    }

    public static bool IsUnsafe(char c) => c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == '\u2028' || c == '\u2029';
}
