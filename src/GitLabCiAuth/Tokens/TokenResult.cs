using GitLabCiAuth.Claims;

namespace GitLabCiAuth.Tokens;

/// <summary>Why a token was refused. <see cref="TokenErrors.Code"/> gives the stable wire code.</summary>
public enum TokenError
{
    None = 0,
    TokenMissing,
    TokenMalformed,
    TokenTooLarge,
    TokenExpired,
    TokenNotYetValid,
    TokenTooOld,
    IssuerMismatch,
    AudienceMismatch,
    AlgorithmNotAllowed,
    UnknownKey,
    SignatureInvalid,
    ClaimMissing,
    KeysUnavailable,
}

/// <summary>The stable error codes (public contract; keep the spelling).</summary>
public static class TokenErrors
{
    public const string TokenMissing = "token_missing";
    public const string TokenMalformed = "token_malformed";
    public const string TokenTooLarge = "token_too_large";
    public const string TokenExpired = "token_expired";
    public const string TokenNotYetValid = "token_not_yet_valid";
    public const string TokenTooOld = "token_too_old";
    public const string IssuerMismatch = "issuer_mismatch";
    public const string AudienceMismatch = "audience_mismatch";
    public const string AlgorithmNotAllowed = "algorithm_not_allowed";
    public const string UnknownKey = "unknown_key";
    public const string SignatureInvalid = "signature_invalid";
    public const string ClaimMissing = "claim_missing";
    public const string KeysUnavailable = "keys_unavailable";

    public static string? Code(TokenError error) => error switch
    {
        TokenError.None => null,
        TokenError.TokenMissing => TokenMissing,
        TokenError.TokenMalformed => TokenMalformed,
        TokenError.TokenTooLarge => TokenTooLarge,
        TokenError.TokenExpired => TokenExpired,
        TokenError.TokenNotYetValid => TokenNotYetValid,
        TokenError.TokenTooOld => TokenTooOld,
        TokenError.IssuerMismatch => IssuerMismatch,
        TokenError.AudienceMismatch => AudienceMismatch,
        TokenError.AlgorithmNotAllowed => AlgorithmNotAllowed,
        TokenError.UnknownKey => UnknownKey,
        TokenError.SignatureInvalid => SignatureInvalid,
        TokenError.ClaimMissing => ClaimMissing,
        TokenError.KeysUnavailable => KeysUnavailable,
        _ => throw new ArgumentOutOfRangeException(nameof(error)),
    };

    /// <summary>HTTP status for the error: 503 for keys_unavailable (with Retry-After), 401 otherwise.</summary>
    public static int HttpStatus(TokenError error) => error switch
    {
        TokenError.None => 200,
        TokenError.KeysUnavailable => 503,
        _ => 401,
    };
}

/// <summary>
/// The outcome of validating one token. On success: <see cref="Claims"/>, <see cref="ExpiresAt"/>,
/// <see cref="Jti"/>, <see cref="Kid"/>, <see cref="TokenHash"/>. On failure: <see cref="Error"/>,
/// <see cref="ErrorCode"/>, a client-safe <see cref="Description"/> (no token, no secrets) and log fields
/// (<see cref="Kid"/>, <see cref="Issuer"/>, <see cref="Audience"/>, <see cref="Jti"/>, <see cref="TokenHash"/>;
/// always in <see cref="ClaimText"/>'s escaped and capped form, ready for log lines and the log record; on failure
/// they come from the unverified token and must only be logged).
/// Successful results are immutable and shared by every cache hit of the same token.
/// </summary>
public sealed class TokenResult
{
    private TokenResult(TokenError error, string? description, ClaimSet? claims, DateTimeOffset? expiresAt,
        DateTimeOffset? issuedAt, string? jti, string? kid, string? issuer, string? audience, string? tokenHash,
        int retryAfterSeconds)
    {
        Error = error;
        Description = description;
        Claims = claims;
        ExpiresAt = expiresAt;
        IssuedAt = issuedAt;
        Jti = jti;
        Kid = kid;
        Issuer = issuer;
        Audience = audience;
        TokenHash = tokenHash;
        RetryAfterSeconds = retryAfterSeconds;
    }

    public bool IsValid => Error == TokenError.None;
    public TokenError Error { get; }

    /// <summary>Stable code, e.g. <c>token_expired</c>; null on success.</summary>
    public string? ErrorCode => TokenErrors.Code(Error);

    /// <summary>Human description, safe to return to the client.</summary>
    public string? Description { get; }

    /// <summary>200, 401, or 503 (keys_unavailable).</summary>
    public int HttpStatus => TokenErrors.HttpStatus(Error);

    /// <summary>For keys_unavailable: seconds for the Retry-After header; else 0.</summary>
    public int RetryAfterSeconds { get; }

    /// <summary>For keys_unavailable: why the issuer's key source has no usable keys (cause, message, URL); else null.</summary>
    public Keys.KeyFetchFailure? KeysFailure { get; private init; }

    /// <summary>
    /// For keys_unavailable: true for the first such result of the key source within its refetch cooldown, the one
    /// whose cause goes to Kong's error log (so a flood of requests writes one line per cooldown).
    /// </summary>
    public bool ReportKeysFailure { get; private init; }

    public ClaimSet? Claims { get; }
    public DateTimeOffset? ExpiresAt { get; }
    public DateTimeOffset? IssuedAt { get; }
    public string? Jti { get; }
    public string? Kid { get; }
    public string? Issuer { get; }

    /// <summary>On success the accepted (configured) audience; on failure the token's aud (arrays joined with ',').</summary>
    public string? Audience { get; }

    /// <summary>First 12 hex chars of SHA-256 of the token; never the token itself.</summary>
    public string? TokenHash { get; }

    private object? _derived;

    /// <summary>
    /// What the validator's owner derives from this verified result once, for every later cache hit (the plugin keeps
    /// the rendered upstream identity here). A result is cached by one validator, which serves one config, so the value
    /// is per config. Built by <paramref name="build"/> at most once per race; the first value stored wins.
    /// </summary>
    public T Derived<T>(Func<TokenResult, T> build) where T : class
    {
        if (Volatile.Read(ref _derived) is T done) return done;
        var made = build(this);
        return Interlocked.CompareExchange(ref _derived, made, null) as T ?? made;
    }

    public static TokenResult Success(ClaimSet claims, DateTimeOffset expiresAt, DateTimeOffset? issuedAt, string? jti,
        string kid, string issuer, string audience, string tokenHash) =>
        new(TokenError.None, null, claims, expiresAt, issuedAt, jti, kid, issuer, audience, tokenHash, 0);

    public static TokenResult Failure(TokenError error, string description, string? kid = null, string? issuer = null,
        string? audience = null, string? jti = null, string? tokenHash = null, int retryAfterSeconds = 0,
        Keys.KeyFetchFailure? keysFailure = null, bool reportKeysFailure = false)
    {
        if (error == TokenError.None) throw new ArgumentOutOfRangeException(nameof(error));
        bool keys = error == TokenError.KeysUnavailable;
        return new(error, description, null, null, null, jti, kid, issuer, audience, tokenHash, keys ? Math.Max(1, retryAfterSeconds) : 0)
        {
            KeysFailure = keys ? keysFailure : null,
            ReportKeysFailure = keys && reportKeysFailure,
        };
    }

    public override string ToString() => IsValid
        ? $"valid (kid={Kid}, jti={Jti}, token={TokenHash})"
        : $"{ErrorCode}: {Description} (kid={Kid}, iss={Issuer}, aud={Audience}, jti={Jti}, token={TokenHash})";
}
