using System.Text;
using Kong.PluginServer.Pdk;

namespace GitLabCiAuth.Identity;

/// <summary>
/// The header names that reach the upstream only from this plugin: the configured identity headers and Kong's
/// consumer headers. Names are compared the way upstreams read them, not the way nginx does: nginx (with Kong's
/// <c>underscores_in_headers on</c>) keeps <c>X_GitLab_Project_Id</c> and <c>X-GitLab-Project-Id</c> apart, but
/// PHP-FPM, WSGI, Rack and every CGI-style upstream read both as <c>HTTP_X_GITLAB_PROJECT_ID</c>. So a name matches
/// when, lower-cased with <c>_</c> read as <c>-</c>, it equals a protected name.
/// </summary>
public sealed class ProtectedHeaders
{
    private readonly byte[][] _keys;
    // bit n set: some key is n bytes long (n < 64). Most request headers are of no protected name's length and are
    // settled by this one test; keys of 64 bytes or more are always compared.
    private readonly ulong _lengths;
    private readonly bool _longKeys;

    public ProtectedHeaders(IEnumerable<string> names)
    {
        _keys = names.Select(Key).Distinct(StringComparer.Ordinal).Select(Encoding.ASCII.GetBytes).ToArray();
        foreach (var key in _keys)
        {
            if (key.Length < 64) _lengths |= 1UL << key.Length;
            else _longKeys = true;
        }
    }

    public int Count => _keys.Length;

    /// <summary>A name as a CGI-style upstream reads it: lower case, <c>_</c> as <c>-</c>.</summary>
    public static string Key(string name) => name.ToLowerInvariant().Replace('_', '-');

    /// <summary>True when the two names read the same to a CGI-style upstream.</summary>
    public static bool SameForUpstream(string a, string b) => Key(a) == Key(b);

    /// <summary>Whether a header name (as Kong sent it) reads as one of the protected names.</summary>
    public bool Matches(ReadOnlySpan<byte> name)
    {
        if (name.Length < 64 ? (_lengths & (1UL << name.Length)) == 0 : !_longKeys) return false;
        foreach (var key in _keys)
        {
            if (key.Length != name.Length) continue;
            int i = 0;
            for (; i < key.Length; i++)
            {
                byte c = name[i];
                if (c is >= (byte)'A' and <= (byte)'Z') c += 32;
                else if (c == (byte)'_') c = (byte)'-';
                if (c != key[i]) break;
            }
            if (i == key.Length) return true;
        }
        return false;
    }

    /// <summary>
    /// One walk over the request's headers: how many lines the view holds, how many values the token header has, and
    /// the names, as sent, of the protected headers the client sent (null when none: the common case allocates nothing).
    /// </summary>
    public SentHeaders Scan(KongHeaderView view, ReadOnlySpan<byte> tokenHeaderLower)
    {
        int lines = 0, tokenCount = 0;
        List<string>? sent = null;
        foreach (var h in view)
        {
            lines += h.ValueCount;
            if (KongHeaderView.NameEquals(h.Name, tokenHeaderLower)) tokenCount += h.ValueCount;
            else if (Matches(h.Name)) (sent ??= new List<string>(2)).Add(Encoding.UTF8.GetString(h.Name));
        }
        return new SentHeaders(lines, tokenCount, sent);
    }
}

/// <summary>What one walk over the request's headers found (see <see cref="ProtectedHeaders.Scan"/>).</summary>
/// <param name="Lines">Header lines in the view (Kong's get_headers stops at its limit).</param>
/// <param name="TokenCount">Values of the token header.</param>
/// <param name="Protected">Names, as sent, of headers that read as protected names; null when none.</param>
public readonly record struct SentHeaders(int Lines, int TokenCount, IReadOnlyList<string>? Protected);
