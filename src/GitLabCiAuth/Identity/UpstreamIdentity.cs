using GitLabCiAuth.Claims;
using Kong.PluginServer.Pdk;

namespace GitLabCiAuth.Identity;

/// <summary>
/// Everything one request tells the upstream about who called, written as one <c>kong.service.request.set_headers</c>
/// map: the identity headers from the verified token and Kong's consumer headers (as Kong's own auth plugins set
/// them). Built once per request; <see cref="Sets"/> tells which client-sent names the map already replaces
/// (nginx's set_header replaces every value of a name, case-insensitively), so only the other spellings are cleared.
/// </summary>
public sealed class UpstreamIdentity : IPdkValue
{
    private readonly (string Name, string Value)[] _set;
    private readonly int _count;

    private UpstreamIdentity((string, string)[] set, int count, IReadOnlyList<string>? dropped)
    {
        _set = set;
        _count = count;
        Dropped = dropped;
    }

    /// <summary>Nothing is set: every protected name the client sent is cleared.</summary>
    public static UpstreamIdentity None { get; } = new([], 0, null);

    /// <summary>Identity headers whose claim was unfit to send (too long, unsafe characters): named in the log record.</summary>
    public IReadOnlyList<string>? Dropped { get; }

    public int Count => _count;

    /// <param name="headers">The identity mapping; its values come from <paramref name="claims"/> (none when null).</param>
    /// <param name="claims">The verified token's claims, or null when the request passes without a verified token.</param>
    /// <param name="consumer">The Kong Consumer the request runs as, if any.</param>
    /// <param name="credentialId">The Kong credential's id, if any.</param>
    /// <param name="anonymous">The <c>anonymous</c> Consumer took over.</param>
    /// <param name="consumerHeaders">Set Kong's consumer headers (false: a dry_run request that would be denied gets none).</param>
    public static UpstreamIdentity Build(IdentityHeaders headers, ClaimSet? claims, KongConsumer? consumer, string? credentialId,
        bool anonymous, bool consumerHeaders)
    {
        var set = new (string, string)[(claims is null ? 0 : headers.Count) + KongConsumerHeaders.All.Count];
        int n = 0;
        List<string>? dropped = null;
        if (claims is not null)
        {
            foreach (var (claim, header) in headers.Entries)
            {
                var v = IdentityHeaders.ValueOf(claims, claim);
                if (v.Value is not null) set[n++] = (header, v.Value);
                else if (v.Dropped) (dropped ??= new List<string>(1)).Add(header);
            }
        }
        if (consumerHeaders)
        {
            if (Fit(consumer?.Id) is { } id) set[n++] = (KongConsumerHeaders.ConsumerId, id);
            if (Fit(consumer?.CustomId) is { } custom) set[n++] = (KongConsumerHeaders.ConsumerCustomId, custom);
            if (Fit(consumer?.Username) is { } user) set[n++] = (KongConsumerHeaders.ConsumerUsername, user);
            if (Fit(credentialId) is { } cred) set[n++] = (KongConsumerHeaders.CredentialIdentifier, cred);
            if (anonymous) set[n++] = (KongConsumerHeaders.Anonymous, "true");
        }
        return n == 0 && dropped is null ? None : new UpstreamIdentity(set, n, dropped);
    }

    private static string? Fit(string? value) => value is not null && ClaimText.IsHeaderSafe(value) ? value : null;

    /// <summary>True when the map sets <paramref name="name"/> (case-insensitive, exact spelling otherwise).</summary>
    public bool Sets(string name)
    {
        for (int i = 0; i < _count; i++)
            if (string.Equals(_set[i].Name, name, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>The value set for <paramref name="name"/>, or null (tests, the demo).</summary>
    public string? Get(string name)
    {
        for (int i = 0; i < _count; i++)
            if (string.Equals(_set[i].Name, name, StringComparison.OrdinalIgnoreCase)) return _set[i].Value;
        return null;
    }

    public void WriteTo(PdkValueWriter w)
    {
        w.BeginMap(_count);
        for (int i = 0; i < _count; i++)
        {
            w.Key(_set[i].Name);
            w.String(_set[i].Value);
        }
        w.EndMap();
    }
}
