using System.Buffers;

namespace GitLabCiAuth.Tokens;

public enum ExtractStatus { Ok, Missing, Malformed, TooLarge }

/// <summary>
/// Extracts the JWT from a header value (UTF-8 bytes from Kong), without allocating:
/// <c>Bearer</c> (any case) + one or more spaces + exactly one token; the token must be three base64url
/// segments separated by exactly two dots (header and payload non-empty; the signature segment may be empty
/// so that <c>alg: none</c> is reported as such). Size is checked first: a header value longer than
/// <c>maxTokenBytes + 64</c>, or a token longer than <c>maxTokenBytes</c>, is "too large" before any other look.
/// </summary>
public static class BearerTokenExtractor
{
    /// <summary>Room for the scheme and whitespace around the token.</summary>
    public const int MaxPrefixBytes = 64;

    public static ExtractStatus Extract(ReadOnlySpan<byte> headerValue, int maxTokenBytes, out Range token) =>
        Extract(headerValue, maxTokenBytes, allowBareToken: false, out token);

    /// <param name="allowBareToken">Also accept a bare JWT without scheme (custom token headers); never for Authorization.</param>
    public static ExtractStatus Extract(ReadOnlySpan<byte> headerValue, int maxTokenBytes, bool allowBareToken, out Range token)
    {
        token = default;
        if (headerValue.Length > maxTokenBytes + MaxPrefixBytes) return ExtractStatus.TooLarge;

        var start = 0;
        var end = headerValue.Length;
        while (start < end && IsOws(headerValue[start])) start++;
        while (end > start && IsOws(headerValue[end - 1])) end--;
        if (start == end) return ExtractStatus.Missing;

        var value = headerValue[start..end];
        var sp = value.IndexOfAny((byte)' ', (byte)'\t');
        int tokStart;
        if (sp < 0)
        {
            if (!allowBareToken) return ExtractStatus.Malformed; // "Bearer" alone, or a scheme-less value
            tokStart = 0;
        }
        else
        {
            if (!IsBearer(value[..sp])) return ExtractStatus.Malformed; // Basic, Digest, ...
            tokStart = sp;
            while (tokStart < value.Length && IsOws(value[tokStart])) tokStart++;
        }

        var tok = value[tokStart..];
        if (tok.IndexOfAny((byte)' ', (byte)'\t') >= 0) return ExtractStatus.Malformed; // more than one token
        if (tok.Length > maxTokenBytes) return ExtractStatus.TooLarge;
        if (!IsCompactJws(tok)) return ExtractStatus.Malformed;

        token = new Range(start + tokStart, end);
        return ExtractStatus.Ok;
    }

    /// <summary>Three base64url segments, exactly two dots, header and payload non-empty, no padding.</summary>
    public static bool IsCompactJws(ReadOnlySpan<byte> token)
    {
        var d1 = token.IndexOf((byte)'.');
        if (d1 <= 0) return false;
        var rest = token[(d1 + 1)..];
        var d2 = rest.IndexOf((byte)'.');
        if (d2 <= 0) return false;
        var sig = rest[(d2 + 1)..];
        if (sig.IndexOf((byte)'.') >= 0) return false;
        return IsBase64Url(token[..d1]) && IsBase64Url(rest[..d2]) && IsBase64Url(sig);
    }

    // vectorized: every request checks the whole token (about 1-2 KB) before its hash is looked up
    private static readonly SearchValues<byte> s_base64Url =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"u8);

    private static bool IsBase64Url(ReadOnlySpan<byte> s) =>
        s.Length % 4 != 1 // impossible base64 length
        && !s.ContainsAnyExcept(s_base64Url);

    private static bool IsBearer(ReadOnlySpan<byte> scheme) =>
        scheme.Length == 6
        && (scheme[0] | 0x20) == 'b' && (scheme[1] | 0x20) == 'e' && (scheme[2] | 0x20) == 'a'
        && (scheme[3] | 0x20) == 'r' && (scheme[4] | 0x20) == 'e' && (scheme[5] | 0x20) == 'r';

    private static bool IsOws(byte b) => b is (byte)' ' or (byte)'\t';
}
