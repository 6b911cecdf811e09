using System.Text;
using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Identity;

/// <summary>
/// A text with <c>{claim}</c> placeholders (credential ids, ACL group names), compiled once. Rendering
/// yields null when a placeholder's claim is absent, an array, or not fit to send as it is (<see cref="ClaimText.IsHeaderSafe"/>),
/// so nothing is built from missing or altered data.
/// </summary>
public sealed class ClaimTemplate
{
    private readonly string[] _literals;   // n+1 literal pieces around n claims
    private readonly string[] _claims;

    private ClaimTemplate(string source, string[] literals, string[] claims)
    {
        Source = source;
        _literals = literals;
        _claims = ClaimNames.Canonical(claims);
    }

    /// <summary><c>{iss_host}</c>: the host of the token's <c>iss</c> URL, lower-case (not a claim of the token).</summary>
    public const string IssuerHost = "iss_host";

    public string Source { get; }
    public IReadOnlyList<string> Claims => _claims;

    /// <summary>True when the text names the token's issuer (<c>{iss}</c> or <c>{iss_host}</c>).</summary>
    public bool NamesIssuer => _claims.Any(c => c is "iss" or IssuerHost);

    /// <summary>Parses a template; raises <see cref="FormatException"/> for an unbalanced or empty placeholder.</summary>
    public static ClaimTemplate Parse(string template)
    {
        var literals = new List<string>();
        var claims = new List<string>();
        var lit = new StringBuilder();
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if (c == '}') throw new FormatException($"'}}' without '{{' at {i}");
            if (c != '{') { lit.Append(c); continue; }
            int end = template.IndexOf('}', i + 1);
            if (end < 0) throw new FormatException($"'{{' at {i} is not closed");
            string name = template[(i + 1)..end];
            if (name.Length == 0 || name.Contains('{')) throw new FormatException($"empty or nested placeholder at {i}");
            literals.Add(lit.ToString());
            lit.Clear();
            claims.Add(name);
            i = end;
        }
        literals.Add(lit.ToString());
        return new ClaimTemplate(template, [.. literals], [.. claims]);
    }

    public string? Render(ClaimSet claims)
    {
        if (_claims.Length == 0) return _literals[0];
        var sb = new StringBuilder(_literals[0]);
        for (int i = 0; i < _claims.Length; i++)
        {
            var v = _claims[i] == IssuerHost ? HostOf(claims.GetString(ClaimNames.Issuer)) : claims.GetString(_claims[i]);
            // the result names a credential or an ACL group (acl copies groups upstream): the claim as it is, or nothing
            if (v is null || !ClaimText.IsHeaderSafe(v)) return null;
            sb.Append(v).Append(_literals[i + 1]);
        }
        return sb.ToString();
    }

    /// <summary>The lower-case host of an issuer URL (what <c>{iss_host}</c> renders), or null.</summary>
    public static string? HostOf(string? issuer) =>
        issuer is not null && Uri.TryCreate(issuer, UriKind.Absolute, out var u) && u.Host.Length > 0 ? u.Host.ToLowerInvariant() : null;

    public override string ToString() => Source;
}
