namespace GitLabCiAuth.Keys;

/// <summary>Why a key fetch failed: a small fixed set, the <c>cause</c> label of the fetch-failure metric.</summary>
public enum KeyFetchCause
{
    /// <summary>Nothing listens at the issuer's address.</summary>
    ConnectionRefused,
    /// <summary>Reset, unreachable, closed before a response: the connection itself failed.</summary>
    Connection,
    /// <summary>The host name did not resolve.</summary>
    NameResolution,
    /// <summary>The TLS handshake failed (certificate not trusted, name mismatch, protocol).</summary>
    Tls,
    /// <summary>The fetch (discovery and key set) took longer than jwks_fetch_timeout_ms.</summary>
    Timeout,
    /// <summary>An answer other than 200.</summary>
    HttpStatus,
    /// <summary>A body over the size limit.</summary>
    BodyTooLarge,
    /// <summary>The discovery document or the key set is not JSON (an HTML error page, a proxy's answer).</summary>
    InvalidJson,
    /// <summary>JSON, but no usable key set (no keys array, too many keys, no usable signing key).</summary>
    InvalidKeySet,
    /// <summary>The discovery document names another issuer, or a jwks_uri elsewhere, not https, or none.</summary>
    Discovery,
    /// <summary>Anything else.</summary>
    Other,
}

public static class KeyFetchCauses
{
    /// <summary>Every cause, in declaration order.</summary>
    public static IReadOnlyList<KeyFetchCause> All { get; } = Enum.GetValues<KeyFetchCause>();

    /// <summary>The metric label value: <c>connection_refused</c>, <c>tls</c>, <c>http_status</c>, ...</summary>
    public static string Label(this KeyFetchCause cause) => cause switch
    {
        KeyFetchCause.ConnectionRefused => "connection_refused",
        KeyFetchCause.Connection => "connection",
        KeyFetchCause.NameResolution => "name_resolution",
        KeyFetchCause.Tls => "tls",
        KeyFetchCause.Timeout => "timeout",
        KeyFetchCause.HttpStatus => "http_status",
        KeyFetchCause.BodyTooLarge => "body_too_large",
        KeyFetchCause.InvalidJson => "invalid_json",
        KeyFetchCause.InvalidKeySet => "invalid_key_set",
        KeyFetchCause.Discovery => "discovery",
        _ => "other",
    };
}

/// <summary>
/// Why a key source has no fresh keys: its URL (<see cref="Source"/>, the source id), the <see cref="Cause"/> and a
/// log-safe <see cref="Message"/> (<c>connection refused</c>, <c>key set: HTTP 500 from https://...</c>, ...).
/// </summary>
public sealed record KeyFetchFailure(string Source, KeyFetchCause Cause, string Message, DateTimeOffset At)
{
    /// <summary><c>keys for URL unavailable: MESSAGE</c>, the line the server and the plugin log.</summary>
    public string Describe() => $"keys for {Source} unavailable: {Message}";
}
