using GitLabCiAuth.Claims;
using Kong.PluginServer.Pdk;

namespace GitLabCiAuth.Identity;

/// <summary>
/// The configured claim → upstream header mapping. For one request it writes the header map straight
/// into kong.service.request.set_headers (no dictionary is built) and tells which configured headers
/// must be cleared because the token has no such claim.
/// </summary>
public sealed class IdentityHeaders
{
    private readonly (string Claim, string Header)[] _map;

    public IdentityHeaders(IReadOnlyDictionary<string, string> claimToHeader)
    {
        _map = claimToHeader.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToArray();
    }

    public int Count => _map.Length;
    public IEnumerable<(string Claim, string Header)> Mapping => _map;

    /// <summary>The set_headers argument for these claims.</summary>
    public IPdkValue For(ClaimSet claims) => new Writer(_map, claims);

    /// <summary>
    /// The headers to clear: configured, and without a value from the token (all of them when <paramref name="claims"/>
    /// is null). Not narrowed to the headers the request shows: kong.request.get_headers stops at 1000 header lines,
    /// so a client could hide a spoofed identity header behind filler headers. Clearing an absent header is a no-op,
    /// and the calls ride in the event's last write.
    /// </summary>
    public void CollectAbsent(ClaimSet? claims, List<string> toClear)
    {
        foreach (var (claim, header) in _map)
        {
            if (claims is not null && HasValue(claims, claim)) continue; // replaced by set_headers
            toClear.Add(header);
        }
    }

    /// <summary>Whether the claim gives the header a value (same rule as <see cref="Value"/>, without building it).</summary>
    internal static bool HasValue(ClaimSet claims, string claim) =>
        claims.TryGet(claim, out var v) && (v.IsArray ? v.Items.Length > 0 : !string.IsNullOrEmpty(v.Single));

    internal static string? Value(ClaimSet claims, string claim)
    {
        if (!claims.TryGet(claim, out var v)) return null;
        if (!v.IsArray) return string.IsNullOrEmpty(v.Single) ? null : HeaderValueSanitizer.Sanitize(v.Single);
        return v.Items.Length == 0 ? null : HeaderValueSanitizer.Sanitize(string.Join(",", v.Items.ToArray()));
    }

    private sealed class Writer((string Claim, string Header)[] map, ClaimSet claims) : IPdkValue
    {
        public void WriteTo(PdkValueWriter w)
        {
            int n = 0;
            foreach (var (claim, _) in map) if (HasValue(claims, claim)) n++;
            w.BeginMap(n);
            foreach (var (claim, header) in map)
            {
                var v = Value(claims, claim);
                if (v is null) continue;
                w.Key(header);
                w.String(v);
            }
            w.EndMap();
        }
    }
}
