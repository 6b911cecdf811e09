using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Identity;

/// <summary>
/// The configured claim → upstream header mapping (<c>upstream_headers</c>). A header's value is the claim exactly as
/// the token has it (arrays joined with <c>,</c>), or the header is not sent: a value that is empty, longer than
/// <see cref="ClaimText.MaxHeaderChars"/> or holds an unsafe character is dropped, never cut or cleaned.
/// </summary>
public sealed class IdentityHeaders
{
    private readonly (string Claim, string Header)[] _map;

    public IdentityHeaders(IReadOnlyDictionary<string, string> claimToHeader)
    {
        _map = claimToHeader.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (ClaimNames.Canonical(kv.Key), kv.Value)).ToArray();
    }

    public int Count => _map.Length;
    public IEnumerable<(string Claim, string Header)> Mapping => _map;
    public IEnumerable<string> Names => _map.Select(m => m.Header);

    /// <summary>What the claim gives the header: absent (the token lacks the claim), dropped (unfit to send), or the value.</summary>
    internal static HeaderValue ValueOf(ClaimSet claims, string claim)
    {
        if (!claims.TryGet(claim, out var v)) return default;
        string? value = v.IsArray
            ? v.Items.Length == 0 ? null : v.Items.Length == 1 ? v.Items[0] : string.Join(",", v.Items.ToArray())
            : v.Single;
        if (string.IsNullOrEmpty(value)) return default;
        return ClaimText.IsHeaderSafe(value) ? new HeaderValue(value, false) : new HeaderValue(null, true);
    }

    internal IEnumerable<(string Claim, string Header)> Entries => _map;
}

/// <summary>A header's value from a claim: <see cref="Value"/> when sent; <see cref="Dropped"/> when the claim is unfit to send.</summary>
internal readonly record struct HeaderValue(string? Value, bool Dropped);
