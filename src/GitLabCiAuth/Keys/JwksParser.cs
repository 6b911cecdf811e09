using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace GitLabCiAuth.Keys;

public enum KeyLogLevel { Debug, Information, Notice, Warning, Error }

/// <summary>Log sink for the key store (the plugin wires it to its logger). Messages never contain tokens.</summary>
public delegate void KeyLog(KeyLogLevel level, string message);

/// <summary>Outcome of <see cref="JwksParser.Parse"/>: a set, or an error saying why the whole document was refused.</summary>
public readonly record struct JwksParseResult(KeySet? Set, string? Error, int SkippedKeys)
{
    /// <summary>The document is not JSON at all (rather than a JSON document that is no usable key set).</summary>
    public bool NotJson { get; init; }
}

/// <summary>
/// Parses a JWKS document (RFC 7517) into a <see cref="KeySet"/>, with System.Text.Json's DOM (no reflection).
/// Rules: only <c>kty</c> RSA (≥ 2048 bits) or EC (P-256/384/521); <c>use</c> absent or <c>sig</c>;
/// <c>key_ops</c>, when present, must include <c>verify</c>; <c>alg</c>, when present, must be a supported
/// asymmetric algorithm matching the key; keys without <c>kid</c> are skipped; a <c>kid</c> that appears more
/// than once is refused entirely (all its keys dropped, logged), so a token naming it gets "unknown key".
/// A document with no usable key is refused as a whole (the caller keeps its last good set).
/// </summary>
public static class JwksParser
{
    public const int MaxKeys = 100;
    public const int MaxKidLength = 256;
    private const int MinRsaBits = 2048;
    private const int MaxRsaBits = 8192;

    private static readonly JsonDocumentOptions s_jsonOptions = new()
    {
        MaxDepth = 16,
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    public static JwksParseResult Parse(ReadOnlySpan<byte> json, KeySet? previous, KeyLog? log)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), s_jsonOptions);
        }
        catch (JsonException e)
        {
            return new(null, "the key set is not valid JSON (" + Trim(e.Message) + ")", 0) { NotJson = true };
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
                return new(null, "the key set has no \"keys\" array", 0);
            if (keys.GetArrayLength() > MaxKeys)
                return new(null, $"the key set has more than {MaxKeys} keys", 0);

            var previousKeys = previous?.Keys.ToDictionary(k => k.Kid, StringComparer.Ordinal);
            // Pass 1: import every candidate, counting how often each candidate kid occurs (a refused
            // candidate still counts: two keys claiming one kid is ambiguous even if only one imports).
            var imported = new List<SigningKey>();
            var kidCounts = new Dictionary<string, int>(StringComparer.Ordinal);
            var skipped = 0;
            foreach (var jwk in keys.EnumerateArray())
            {
                var key = TryImport(jwk, previousKeys, log, out var candidateKid);
                if (candidateKid is not null) kidCounts[candidateKid] = kidCounts.GetValueOrDefault(candidateKid) + 1;
                if (key is null) skipped++;
                else imported.Add(key);
            }

            // Pass 2: keep keys whose kid is unambiguous; refuse duplicated kids entirely.
            var byKid = new Dictionary<string, SigningKey>(StringComparer.Ordinal);
            var dropped = new List<string>();
            foreach (var (kid, count) in kidCounts)
            {
                if (count < 2) continue;
                dropped.Add(kid);
                log?.Invoke(KeyLogLevel.Warning, $"JWKS: kid '{Trim(kid)}' appears {count} times; refusing it (ambiguous key)");
            }
            foreach (var key in imported)
                if (kidCounts.GetValueOrDefault(key.Kid) == 1) byKid.Add(key.Kid, key);

            if (byKid.Count == 0)
                return new(null, dropped.Count > 0
                    ? "the key set has no usable signing key (duplicate kids were refused)"
                    : "the key set has no usable signing key", skipped + dropped.Count);

            var fingerprint = SetFingerprint(byKid);
            if (previous is not null && previous.Fingerprint == fingerprint)
                return new(previous, null, skipped + dropped.Count);
            return new(new KeySet(byKid, fingerprint, dropped), null, skipped + dropped.Count);
        }
    }

    private static SigningKey? TryImport(JsonElement jwk, Dictionary<string, SigningKey>? previous, KeyLog? log, out string? kidSeen)
    {
        kidSeen = null;
        if (jwk.ValueKind != JsonValueKind.Object) return null;

        var kid = GetString(jwk, "kid");
        if (string.IsNullOrEmpty(kid))
        {
            log?.Invoke(KeyLogLevel.Debug, "JWKS: skipping a key without kid");
            return null;
        }
        if (kid.Length > MaxKidLength)
        {
            log?.Invoke(KeyLogLevel.Warning, "JWKS: skipping a key with an over-long kid");
            return null;
        }
        kidSeen = kid;

        var kty = GetString(jwk, "kty");
        if (kty is not ("RSA" or "EC"))
        {
            // Not a signing key type we accept (oct, OKP, ...): not ambiguous with ours, just ignored.
            kidSeen = null;
            log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping kid '{Trim(kid)}': kty '{Trim(kty)}' is not RSA or EC");
            return null;
        }

        if (jwk.TryGetProperty("use", out var use) && !(use.ValueKind == JsonValueKind.String && use.GetString() == "sig"))
        {
            kidSeen = null; // an encryption key may legitimately share a kid with its signing twin
            log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping kid '{Trim(kid)}': use is not 'sig'");
            return null;
        }
        if (jwk.TryGetProperty("key_ops", out var ops))
        {
            var verify = false;
            if (ops.ValueKind == JsonValueKind.Array)
                foreach (var op in ops.EnumerateArray())
                    if (op.ValueKind == JsonValueKind.String && op.GetString() == "verify") verify = true;
            if (!verify)
            {
                kidSeen = null;
                log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping kid '{Trim(kid)}': key_ops lacks 'verify'");
                return null;
            }
        }

        JwsAlgorithm? alg = null;
        if (jwk.TryGetProperty("alg", out var algEl))
        {
            if (algEl.ValueKind != JsonValueKind.String || !JwsAlgorithms.TryParse(algEl.GetString(), out var a))
            {
                log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping kid '{Trim(kid)}': alg is not an allowed asymmetric algorithm");
                return null;
            }
            alg = a;
        }

        try
        {
            return kty == "RSA" ? ImportRsa(jwk, kid, alg, previous, log) : ImportEc(jwk, kid, alg, previous, log);
        }
        catch (Exception e) when (e is CryptographicException or FormatException or ArgumentException)
        {
            log?.Invoke(KeyLogLevel.Warning, $"JWKS: skipping kid '{Trim(kid)}': cannot import the key ({e.GetType().Name})");
            return null;
        }
    }

    private static SigningKey? ImportRsa(JsonElement jwk, string kid, JwsAlgorithm? alg, Dictionary<string, SigningKey>? previous, KeyLog? log)
    {
        if (alg is { } a && JwsAlgorithms.KeyTypeOf(a) != JwkKeyType.Rsa)
        {
            log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping kid '{Trim(kid)}': alg does not fit an RSA key");
            return null;
        }
        var n = GetBase64Url(jwk, "n");
        var e = GetBase64Url(jwk, "e");
        if (n is null || e is null) { log?.Invoke(KeyLogLevel.Warning, $"JWKS: skipping RSA kid '{Trim(kid)}': missing n or e"); return null; }
        var nStart = 0;
        while (nStart < n.Length && n[nStart] == 0) nStart++;
        n = n[nStart..];
        var bits = n.Length == 0 ? 0 : (n.Length - 1) * 8 + (32 - int.LeadingZeroCount(n[0]));
        if (bits < MinRsaBits || bits > MaxRsaBits)
        {
            log?.Invoke(KeyLogLevel.Warning, $"JWKS: skipping RSA kid '{Trim(kid)}': {bits}-bit modulus outside {MinRsaBits}..{MaxRsaBits}");
            return null;
        }
        var eStart = 0;
        while (eStart < e.Length && e[eStart] == 0) eStart++;
        e = e[eStart..];
        if (e.Length == 0 || e.Length > 8 || (e[^1] & 1) == 0 || (e.Length == 1 && e[0] < 3))
        {
            log?.Invoke(KeyLogLevel.Warning, $"JWKS: skipping RSA kid '{Trim(kid)}': bad public exponent");
            return null;
        }

        var material = Fingerprint("RSA", null, alg, n, e);
        if (previous is not null && previous.TryGetValue(kid, out var old) && old.MaterialFingerprint == material) return old;

        var rsa = RSA.Create();
        rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
        var sk = new RsaSecurityKey(rsa) { KeyId = kid };
        var rs256 = alg is null or JwsAlgorithm.RS256 ? OpenSslRs256.Create(n, e) : null;
        return new SigningKey(kid, JwkKeyType.Rsa, JwkCurve.None, alg, bits, sk, material, rs256);
    }

    private static SigningKey? ImportEc(JsonElement jwk, string kid, JwsAlgorithm? alg, Dictionary<string, SigningKey>? previous, KeyLog? log)
    {
        var crvName = GetString(jwk, "crv");
        var (crv, size, curve) = crvName switch
        {
            "P-256" => (JwkCurve.P256, 32, ECCurve.NamedCurves.nistP256),
            "P-384" => (JwkCurve.P384, 48, ECCurve.NamedCurves.nistP384),
            "P-521" => (JwkCurve.P521, 66, ECCurve.NamedCurves.nistP521),
            _ => (JwkCurve.None, 0, default(ECCurve)),
        };
        if (crv == JwkCurve.None)
        {
            log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping EC kid '{Trim(kid)}': unsupported curve '{Trim(crvName)}'");
            return null;
        }
        if (alg is { } a && !JwsAlgorithms.FitsKey(a, JwkKeyType.EC, crv))
        {
            log?.Invoke(KeyLogLevel.Debug, $"JWKS: skipping EC kid '{Trim(kid)}': alg does not fit curve {crvName}");
            return null;
        }
        var x = GetBase64Url(jwk, "x");
        var y = GetBase64Url(jwk, "y");
        if (x is null || y is null || x.Length != size || y.Length != size)
        {
            log?.Invoke(KeyLogLevel.Warning, $"JWKS: skipping EC kid '{Trim(kid)}': bad x/y coordinates");
            return null;
        }

        var material = Fingerprint("EC", crvName, alg, x, y);
        if (previous is not null && previous.TryGetValue(kid, out var old) && old.MaterialFingerprint == material) return old;

        var ecdsa = ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } }); // validates the point
        var sk = new ECDsaSecurityKey(ecdsa) { KeyId = kid };
        return new SigningKey(kid, JwkKeyType.EC, crv, alg, size * 8 - (crv == JwkCurve.P521 ? 7 : 0), sk, material);
    }

    private static string Fingerprint(string kty, string? crv, JwsAlgorithm? alg, byte[] a, byte[] b)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(Encoding.ASCII.GetBytes($"{kty}|{crv}|{(alg is null ? "" : JwsAlgorithms.Name(alg.Value))}|{a.Length}|"));
        h.AppendData(a);
        h.AppendData("|"u8);
        h.AppendData(b);
        return Convert.ToHexString(h.GetHashAndReset());
    }

    private static string SetFingerprint(Dictionary<string, SigningKey> byKid)
    {
        var parts = byKid.Select(kv => kv.Key + "=" + kv.Value.MaterialFingerprint).Order(StringComparer.Ordinal);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))));
    }

    private static string? GetString(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static byte[]? GetBase64Url(JsonElement o, string name)
    {
        var s = GetString(o, name);
        if (string.IsNullOrEmpty(s) || s.Length > 4096) return null;
        foreach (var c in s)
            if (!(c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_')) return null;
        try
        {
            return Base64Url.DecodeFromChars(s);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    internal static string Trim(string? s)
    {
        if (s is null) return "";
        var t = s.Length > 80 ? s[..80] + "…" : s;
        return string.Create(t.Length, t, static (dst, src) =>
        {
            for (var i = 0; i < src.Length; i++) dst[i] = char.IsControl(src[i]) ? '?' : src[i];
        });
    }
}
