using System.Text;

namespace GitLabCiAuth.Policy;

/// <summary>
/// The request path as Kong hands it to plugins (<c>kong.request.get_path</c>, the value of <c>@path</c>): percent-encoded
/// unreserved characters (letters, digits, <c>-._~</c>) decoded and other escapes upper-cased, runs of <c>/</c> merged,
/// <c>.</c> and <c>..</c> segments resolved. What it leaves alone matters for policies: <c>;</c> parameters stay, and
/// <c>%2F</c> stays encoded, so <c>/api;x=1/admin</c> and <c>/api%2Fadmin</c> never read as <c>/api/admin</c>.
/// <c>check --path</c> uses it so a rule is explained against the path Kong will really send.
/// </summary>
public static class KongPath
{
    public static string Normalize(string path)
    {
        if (path.Length == 0 || path == "/") return path;
        string decoded = path.Contains('%') ? DecodeUnreserved(path) : path;
        bool leading = decoded.StartsWith('/');
        bool trailing = decoded.EndsWith('/') || decoded.EndsWith("/.", StringComparison.Ordinal) || decoded.EndsWith("/..", StringComparison.Ordinal);
        var output = new List<string>();
        foreach (var segment in decoded.Split('/'))
        {
            if (segment.Length == 0 || segment == ".") continue; // merged slashes, current directory
            if (segment == "..")
            {
                if (output.Count > 0) output.RemoveAt(output.Count - 1);
                continue;
            }
            output.Add(segment);
        }
        var sb = new StringBuilder(decoded.Length);
        if (leading) sb.Append('/');
        sb.AppendJoin('/', output);
        if (trailing && output.Count > 0) sb.Append('/');
        return sb.Length == 0 ? "/" : sb.ToString();
    }

    private static string DecodeUnreserved(string path)
    {
        var sb = new StringBuilder(path.Length);
        for (int i = 0; i < path.Length; i++)
        {
            if (path[i] == '%' && i + 2 < path.Length && Uri.IsHexDigit(path[i + 1]) && Uri.IsHexDigit(path[i + 2]))
            {
                char c = (char)Convert.ToInt32(path.Substring(i + 1, 2), 16);
                if (char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~') sb.Append(c);
                else sb.Append('%').Append(char.ToUpperInvariant(path[i + 1])).Append(char.ToUpperInvariant(path[i + 2]));
                i += 2;
            }
            else sb.Append(path[i]);
        }
        return sb.ToString();
    }
}
