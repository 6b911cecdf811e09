using System.Buffers;
using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using GitLabCiAuth.Claims;
using GitLabCiAuth.Keys;

namespace GitLabCiAuth.Tokens;

/// <summary>
/// Validates GitLab CI ID tokens for one plugin instance (one set of <see cref="TokenValidationOptions"/>),
/// using a key source shared through a <see cref="JwksKeyStore"/>. Thread-safe; meant to live as long as the
/// plugin instance (dispose it when the instance goes away, which releases the key source).
/// <para>
/// Order of checks: size → extraction/shape → header and payload JSON (strict: duplicate members refused) →
/// <c>crit</c> (refused) → <c>alg</c> allow-list → <c>kid</c> present → <c>iss</c> → <c>aud</c> → <c>exp</c>/<c>nbf</c>/<c>iat</c>/max age
/// (these cheap checks come before any key work, so tokens that could never pass do not trigger key fetches) →
/// key by <c>kid</c> (unknown kid: one cooldown-limited refetch) → <c>alg</c> fits the key → signature
/// (Microsoft.IdentityModel's <c>AsymmetricSignatureProvider</c>) → required claims.
/// <c>jku</c>/<c>x5u</c>/<c>jwk</c>/<c>x5c</c> header fields are ignored, never fetched or trusted.
/// </para>
/// </summary>
public sealed class GitLabTokenValidator : IDisposable
{
    private const int MaxLogFieldLength = 128;
    private static readonly long s_maxUnixMs = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    private static readonly JsonDocumentOptions s_jsonOptions = new()
    {
        MaxDepth = 16,
        AllowDuplicateProperties = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    private static readonly TokenResult s_missing = TokenResult.Failure(TokenError.TokenMissing, "no bearer token was sent");
    private static readonly TokenResult s_tooLarge = TokenResult.Failure(TokenError.TokenTooLarge, "the token is larger than allowed");
    private static readonly TokenResult s_badHeader = TokenResult.Failure(TokenError.TokenMalformed,
        "the credentials are not a bearer JWT (expected 'Bearer <header>.<payload>.<signature>')");

    private readonly KeySourceLease[] _leases;   // one per accepted issuer, in _issuers' order
    private readonly AcceptedIssuer[] _issuers;
    private readonly TimeProvider _time;
    private readonly VerifiedTokenCache _cache;
    private readonly bool[] _allowedAlgs = new bool[JwsAlgorithms.Count];
    private readonly string[] _requiredClaims;
    private readonly long _skewMs;
    private readonly long _maxAgeMs;
    private readonly int _maxTokenBytes;
    private readonly RetainedClaims? _retained;
    private readonly bool _allowBareToken;

    /// <param name="options">Validated here; throws <see cref="TokenOptionsException"/> naming the bad field.</param>
    /// <param name="keyStore">The shared store; defaults to <see cref="JwksKeyStore.Shared"/>.</param>
    /// <param name="timeProvider">Clock for token times when no explicit now is given; defaults to the store's clock.</param>
    public GitLabTokenValidator(TokenValidationOptions options, JwksKeyStore? keyStore = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        keyStore ??= JwksKeyStore.Shared;
        _time = timeProvider ?? keyStore.TimeProvider;

        var issuers = options.EffectiveIssuers;
        foreach (var a in options.Algorithms)
            if (JwsAlgorithms.TryParse(a, out var alg)) _allowedAlgs[(int)alg] = true;
        _requiredClaims = ClaimNames.Canonical(options.RequiredClaims.Distinct(StringComparer.Ordinal));
        _skewMs = options.ClockSkewSeconds * 1000L;
        _maxAgeMs = options.MaxTokenAgeSeconds * 1000L;
        _maxTokenBytes = options.MaxTokenBytes;
        // required claims are checked on the kept set: keep them too
        _retained = options.RetainedClaims is { } r ? new RetainedClaims(r.Names.Concat(_requiredClaims)) : null;
        _allowBareToken = !string.Equals(options.TokenHeader, "authorization", StringComparison.OrdinalIgnoreCase);
        _cache = new VerifiedTokenCache(options.VerifiedTokenCacheSize);
        _issuers = new AcceptedIssuer[issuers.Count];
        _leases = new KeySourceLease[issuers.Count];
        try
        {
            for (int i = 0; i < issuers.Count; i++)
            {
                _leases[i] = keyStore.Acquire(KeySourceSettings.FromOptions(options, issuers[i]));
                _issuers[i] = new AcceptedIssuer(issuers[i].Issuer, [.. issuers[i].Audiences!], i);
            }
        }
        catch
        {
            foreach (var l in _leases) l?.Dispose();
            throw;
        }
    }

    private sealed record AcceptedIssuer(string Issuer, string[] Audiences, int Source);

    /// <summary>The first accepted issuer's key source (the top-level <c>issuer</c> when set): status, forced refresh.</summary>
    public KeySourceLease Keys => _leases[0];

    /// <summary>Every accepted issuer's key source, in the config's order (<c>issuer</c>, then <c>issuers</c>).</summary>
    public IReadOnlyList<KeySourceLease> IssuerKeys => _leases;

    /// <summary>Completes when every key source's first fetch has finished (successfully or not).</summary>
    public Task InitialKeyFetch => _leases.Length == 1 ? _leases[0].InitialFetch : Task.WhenAll(_leases.Select(l => l.InitialFetch));

    public VerifiedTokenCache Cache => _cache;

    /// <summary>Validates the token in a header value, at the validator clock's current time.</summary>
    public ValueTask<TokenResult> ValidateAsync(ReadOnlySpan<byte> headerValue, CancellationToken cancellationToken = default) =>
        ValidateAsync(headerValue, _time.GetUtcNow(), cancellationToken);

    /// <summary>Convenience overload (allocates the UTF-8 bytes); null or empty = token_missing.</summary>
    public ValueTask<TokenResult> ValidateAsync(string? headerValue, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        headerValue is null ? new(s_missing) : ValidateAsync(Encoding.UTF8.GetBytes(headerValue).AsSpan(), now, cancellationToken);

    public ValueTask<TokenResult> ValidateAsync(string? headerValue, CancellationToken cancellationToken = default) =>
        ValidateAsync(headerValue, _time.GetUtcNow(), cancellationToken);

    /// <summary>
    /// Validates the token in <paramref name="headerValue"/> (the raw header value, e.g. <c>Bearer eyJ...</c>, as
    /// UTF-8). A verified-token cache hit with usable keys completes synchronously without allocating; otherwise
    /// the token bytes are copied and validation continues asynchronously (it may wait for a key fetch, bounded by
    /// jwks_fetch_timeout_ms).
    /// </summary>
    public ValueTask<TokenResult> ValidateAsync(ReadOnlySpan<byte> headerValue, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        switch (BearerTokenExtractor.Extract(headerValue, _maxTokenBytes, _allowBareToken, out var range))
        {
            case ExtractStatus.Missing: return new(s_missing);
            case ExtractStatus.TooLarge: return new(s_tooLarge);
            case ExtractStatus.Malformed: return new(s_badHeader);
        }
        var token = headerValue[range];
        var hash = TokenHash.Compute(token);
        if (_leases.Length == 1 ? _cache.TryGet(hash, now, _leases[0].GetUsableKeys(), out var hit) : _cache.TryGet(hash, now, _leases, out hit))
            return new(hit);
        var copy = ArrayPool<byte>.Shared.Rent(token.Length); // the signature path may wait for keys: it needs its own copy
        token.CopyTo(copy);
        return ValidateGuardedAsync(copy, token.Length, hash, now, cancellationToken);
    }

    /// <summary>
    /// Text in an unverified token that JSON parsing accepts but cannot be read as a string (escaped lone
    /// surrogates) makes System.Text.Json throw on read: that is a malformed token (401), never a 500.
    /// </summary>
    private async ValueTask<TokenResult> ValidateGuardedAsync(byte[] token, int length, TokenHash hash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        try { return await ValidateSlowAsync(token, length, hash, now, cancellationToken).ConfigureAwait(false); }
        catch (InvalidOperationException)
        {
            return TokenResult.Failure(TokenError.TokenMalformed, "the token contains text that is not valid UTF-8", tokenHash: hash.ToShortHex());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(token, clearArray: true); // a credential: not left in a shared buffer
        }
    }

    private async ValueTask<TokenResult> ValidateSlowAsync(byte[] token, int length, TokenHash hash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var tokenHash = hash.ToShortHex();
        var d1 = Array.IndexOf(token, (byte)'.', 0, length);
        var d2 = Array.IndexOf(token, (byte)'.', d1 + 1, length - d1 - 1);

        // --- structure: header and payload must be base64url-encoded JSON objects ---
        using var header = ParsedSegment.Parse(token.AsSpan(0, d1));
        if (header.Document is null || header.Document.RootElement.ValueKind != JsonValueKind.Object)
            return TokenResult.Failure(TokenError.TokenMalformed, "the token header is not a base64url JSON object", tokenHash: tokenHash);
        using var payload = ParsedSegment.Parse(token.AsSpan(d1 + 1, d2 - d1 - 1));
        if (payload.Document is null || payload.Document.RootElement.ValueKind != JsonValueKind.Object)
            return TokenResult.Failure(TokenError.TokenMalformed, "the token payload is not a base64url JSON object", tokenHash: tokenHash);

        var h = header.Document.RootElement;
        var p = payload.Document.RootElement;
        var jti = LogString(p, "jti");
        // the other log fields are only read when the token is refused
        TokenResult Fail(TokenError e, string description, int retryAfter = 0, KeyFetchFailure? keys = null, bool report = false) =>
            TokenResult.Failure(e, description, LogString(h, "kid"), LogString(p, "iss"), LogAudience(p), jti, tokenHash, retryAfter, keys, report);

        // --- header ---
        if (h.TryGetProperty("crit", out _))
            return Fail(TokenError.TokenMalformed, "the token uses critical header extensions, which are not supported");
        if (!h.TryGetProperty("alg", out var algEl) || algEl.ValueKind != JsonValueKind.String)
            return Fail(TokenError.TokenMalformed, "the token header has no alg");
        if (!JwsAlgorithms.TryParse(algEl.GetString(), out var alg) || !_allowedAlgs[(int)alg])
            return Fail(TokenError.AlgorithmNotAllowed, "the token's signing algorithm is not allowed");
        string? kidValue = null;
        if (h.TryGetProperty("kid", out var kidEl))
        {
            if (kidEl.ValueKind != JsonValueKind.String) return Fail(TokenError.TokenMalformed, "the token header's kid is not a string");
            kidValue = ClaimValuePool.TryFind(JsonMarshal.GetRawUtf8Value(kidEl), out var known) ? known : kidEl.GetString(); // a handful of kids, thousands of tokens
        }
        if (string.IsNullOrEmpty(kidValue) || kidValue.Length > JwksParser.MaxKidLength)
            return Fail(TokenError.UnknownKey, "the token does not name a known signing key (no kid)");

        // --- cheap claim checks, before any key work: the issuer picks the key source (exact match) ---
        AcceptedIssuer? issuer = null;
        if (p.TryGetProperty("iss", out var issEl) && issEl.ValueKind == JsonValueKind.String)
            foreach (var candidate in _issuers)
                if (issEl.ValueEquals(candidate.Issuer)) { issuer = candidate; break; }
        if (issuer is null)
            return Fail(TokenError.IssuerMismatch, "the token was not issued by an accepted issuer");

        var matchedAudience = MatchAudience(p, issuer.Audiences);
        if (matchedAudience is null)
            return Fail(TokenError.AudienceMismatch, "the token's audience is not accepted here");

        var nowMs = now.ToUnixTimeMilliseconds();
        switch (ReadNumericDate(p, "exp", out var expMs))
        {
            case DateRead.Missing: return Fail(TokenError.ClaimMissing, "the token has no exp claim");
            case DateRead.Invalid: return Fail(TokenError.TokenMalformed, "the token's exp claim is not a valid NumericDate");
        }
        var nbfRead = ReadNumericDate(p, "nbf", out var nbfMs);
        if (nbfRead == DateRead.Invalid) return Fail(TokenError.TokenMalformed, "the token's nbf claim is not a valid NumericDate");
        var iatRead = ReadNumericDate(p, "iat", out var iatMs);
        if (iatRead == DateRead.Invalid) return Fail(TokenError.TokenMalformed, "the token's iat claim is not a valid NumericDate");

        if (nowMs >= expMs + _skewMs) return Fail(TokenError.TokenExpired, "the token has expired");
        if (nbfRead == DateRead.Ok && nowMs + _skewMs < nbfMs) return Fail(TokenError.TokenNotYetValid, "the token is not valid yet (nbf)");
        if (iatRead == DateRead.Ok && nowMs + _skewMs < iatMs) return Fail(TokenError.TokenNotYetValid, "the token was issued in the future (iat)");
        if (_maxAgeMs > 0)
        {
            if (iatRead != DateRead.Ok) return Fail(TokenError.ClaimMissing, "the token has no iat claim, needed for the maximum token age");
            if (nowMs - iatMs > _maxAgeMs + _skewMs) return Fail(TokenError.TokenTooOld, "the token is older than the maximum token age");
        }

        // --- key ---
        var resolution = await _leases[issuer.Source].ResolveAsync(kidValue, cancellationToken).ConfigureAwait(false);
        switch (resolution.Status)
        {
            case KeyResolutionStatus.KeysUnavailable:
                return Fail(TokenError.KeysUnavailable, "the issuer's signing keys are temporarily unavailable", resolution.RetryAfterSeconds,
                    resolution.Failure, resolution.Report);
            case KeyResolutionStatus.UnknownKey:
                return Fail(TokenError.UnknownKey, "the token was signed with an unknown key");
        }
        var key = resolution.Key!;
        if (!key.Accepts(alg))
            return Fail(TokenError.AlgorithmNotAllowed, "the token's signing algorithm does not match its key");

        // --- signature ---
        var sigSegment = token.AsSpan(d2 + 1, length - d2 - 1);
        var sig = ArrayPool<byte>.Shared.Rent(Base64Url.GetMaxDecodedLength(sigSegment.Length) + 1);
        try
        {
            if (Base64Url.DecodeFromUtf8(sigSegment, sig, out _, out var sigLen) != OperationStatus.Done
                || !key.Verify(alg, token, d2, sig, sigLen))
                return Fail(TokenError.SignatureInvalid, "the token's signature is invalid");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sig);
        }

        // --- verified: claims ---
        var claims = _retained is null ? ClaimSet.FromJson(p) : ClaimSet.FromJson(p, _retained);
        foreach (var name in _requiredClaims)
        {
            if (!claims.TryGet(name, out var v) || (v.IsArray ? v.Items.Length == 0 : string.IsNullOrEmpty(v.Single)))
                return Fail(TokenError.ClaimMissing, $"the token lacks the required claim '{name}'");
        }

        var result = TokenResult.Success(claims, DateTimeOffset.FromUnixTimeMilliseconds(expMs),
            iatRead == DateRead.Ok ? DateTimeOffset.FromUnixTimeMilliseconds(iatMs) : null,
            jti,
            ClaimValuePool.Intern(kidValue), issuer.Issuer, matchedAudience, tokenHash);

        var deadlineMs = expMs + _skewMs;
        if (_maxAgeMs > 0) deadlineMs = Math.Min(deadlineMs, iatMs + _maxAgeMs + _skewMs);
        // exp may be as late as 9999-12-31T23:59:59Z, and the skew pushes the deadline past DateTimeOffset's range
        deadlineMs = Math.Clamp(deadlineMs - 1, 0, s_maxUnixMs);
        _cache.Add(hash, result, key, resolution.Set!.Generation, DateTimeOffset.FromUnixTimeMilliseconds(deadlineMs), issuer.Source);
        return result;
    }

    private static string? MatchAudience(JsonElement payload, string[] audiences)
    {
        if (!payload.TryGetProperty("aud", out var aud)) return null;
        if (aud.ValueKind == JsonValueKind.String) return Match(aud);
        if (aud.ValueKind != JsonValueKind.Array) return null;
        foreach (var a in aud.EnumerateArray())
        {
            if (a.ValueKind != JsonValueKind.String) continue;
            var m = Match(a);
            if (m is not null) return m;
        }
        return null;

        string? Match(JsonElement s)
        {
            foreach (var configured in audiences)
                if (s.ValueEquals(configured)) return configured;
            return null;
        }
    }

    private enum DateRead { Missing, Invalid, Ok }

    // NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional; bounded to years 1970..9999.
    private static DateRead ReadNumericDate(JsonElement payload, string name, out long ms)
    {
        ms = 0;
        if (!payload.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return DateRead.Missing;
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetDouble(out var seconds)) return DateRead.Invalid;
        if (double.IsNaN(seconds) || seconds < 0 || seconds > 253402300799d) return DateRead.Invalid;
        ms = (long)Math.Floor(seconds * 1000d);
        return DateRead.Ok;
    }

    /// <summary>A decoded token segment's JSON document and the pooled buffer it reads from (returned with the document).</summary>
    private readonly struct ParsedSegment : IDisposable
    {
        private readonly byte[]? _buffer;
        public readonly JsonDocument? Document;

        private ParsedSegment(byte[] buffer, JsonDocument? document) { _buffer = buffer; Document = document; }

        public static ParsedSegment Parse(ReadOnlySpan<byte> segment)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(Base64Url.GetMaxDecodedLength(segment.Length));
            if (Base64Url.DecodeFromUtf8(segment, buffer, out _, out var written) != OperationStatus.Done) return new(buffer, null);
            if (!System.Text.Unicode.Utf8.IsValid(buffer.AsSpan(0, written))) return new(buffer, null); // not text: malformed
            try
            {
                return new(buffer, JsonDocument.Parse(buffer.AsMemory(0, written), s_jsonOptions));
            }
            catch (JsonException)
            {
                return new(buffer, null);
            }
        }

        public void Dispose()
        {
            Document?.Dispose();
            if (_buffer is not null) ArrayPool<byte>.Shared.Return(_buffer, clearArray: true); // claims of a credential
        }
    }

    private static string? LogString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? Sanitize(v.GetString()) : null;

    private static string? LogAudience(JsonElement payload)
    {
        if (!payload.TryGetProperty("aud", out var aud)) return null;
        if (aud.ValueKind == JsonValueKind.String) return Sanitize(aud.GetString());
        if (aud.ValueKind != JsonValueKind.Array) return null;
        var parts = new List<string>();
        foreach (var a in aud.EnumerateArray())
            if (a.ValueKind == JsonValueKind.String) parts.Add(a.GetString()!);
        return Sanitize(string.Join(',', parts));
    }

    // what a token says about itself reaches logs only in ClaimText's escaped, capped form
    private static string? Sanitize(string? s) => s is null ? null : ClaimText.Escape(s, MaxLogFieldLength);

    public void Dispose()
    {
        foreach (var l in _leases) l.Dispose();
        _cache.Clear();
    }
}
