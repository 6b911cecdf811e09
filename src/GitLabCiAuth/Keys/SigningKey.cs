using Microsoft.IdentityModel.Tokens;

namespace GitLabCiAuth.Keys;

/// <summary>
/// One imported public key from a JWKS. Imported once per fetch (and reused across fetches while its
/// material is unchanged), never per request. RS256, the algorithm GitLab signs with, is verified through
/// OpenSSL directly when this process can (<see cref="OpenSslRs256"/>); every other algorithm, and RS256 where
/// that path is not available, goes through Microsoft.IdentityModel's <see cref="AsymmetricSignatureProvider"/>,
/// created lazily once per algorithm and reused (thread-safe).
/// </summary>
public sealed class SigningKey
{
    private readonly SignatureProvider?[] _providers = new SignatureProvider?[JwsAlgorithms.Count];
    private readonly OpenSslRs256? _rs256;

    internal SigningKey(string kid, JwkKeyType keyType, JwkCurve curve, JwsAlgorithm? algorithm, int keySizeBits,
        AsymmetricSecurityKey securityKey, string materialFingerprint, OpenSslRs256? rs256 = null)
    {
        _rs256 = rs256;
        Kid = kid;
        KeyType = keyType;
        Curve = curve;
        Algorithm = algorithm;
        KeySizeBits = keySizeBits;
        SecurityKey = securityKey;
        MaterialFingerprint = materialFingerprint;
    }

    public string Kid { get; }
    public JwkKeyType KeyType { get; }
    public JwkCurve Curve { get; }

    /// <summary>The JWK's <c>alg</c>, when it declared one: then only that algorithm may be used with it.</summary>
    public JwsAlgorithm? Algorithm { get; }

    public int KeySizeBits { get; }

    /// <summary><see cref="RsaSecurityKey"/> or <see cref="ECDsaSecurityKey"/>.</summary>
    public AsymmetricSecurityKey SecurityKey { get; }

    /// <summary>SHA-256 over kty/crv/alg/public material: equal fingerprints = same key.</summary>
    internal string MaterialFingerprint { get; }

    /// <summary>True when a token signed with <paramref name="alg"/> may be verified with this key.</summary>
    public bool Accepts(JwsAlgorithm alg) =>
        (Algorithm is null || Algorithm == alg) && JwsAlgorithms.FitsKey(alg, KeyType, Curve);

    /// <summary>
    /// Verifies a JWS signature: <paramref name="input"/>[0..inputLength) is the ASCII signing input
    /// (<c>header.payload</c>), <paramref name="signature"/>[0..signatureLength) the decoded signature.
    /// Callers check <see cref="Accepts"/> first.
    /// </summary>
    internal bool Verify(JwsAlgorithm alg, byte[] input, int inputLength, byte[] signature, int signatureLength)
    {
        if (!Accepts(alg) || signatureLength <= 0) return false;
        if (KeyType == JwkKeyType.EC && !EcdsaSignature.IsCanonical(Curve, signature.AsSpan(0, signatureLength))) return false;
        if (alg == JwsAlgorithm.RS256 && _rs256 is not null)
            return _rs256.VerifyData(input.AsSpan(0, inputLength), signature.AsSpan(0, signatureLength));
        var provider = Volatile.Read(ref _providers[(int)alg]);
        if (provider is null)
        {
            var created = new AsymmetricSignatureProvider(SecurityKey, JwsAlgorithms.Name(alg), willCreateSignatures: false);
            provider = Interlocked.CompareExchange(ref _providers[(int)alg], created, null) ?? created;
            if (!ReferenceEquals(provider, created)) created.Dispose();
        }
        try
        {
            return provider.Verify(input, 0, inputLength, signature, 0, signatureLength);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>True when this process verifies RS256 through OpenSSL directly (decided once, on first use).</summary>
    public static bool Rs256ThroughOpenSsl => OpenSslRs256.IsAvailable;

    /// <summary>True when RS256 signatures under this key are verified through OpenSSL directly.</summary>
    internal bool VerifiesRs256Directly => _rs256 is not null;

    public override string ToString() => $"{Kid} ({KeyType}{(Curve == JwkCurve.None ? "" : " " + Curve)}, {KeySizeBits} bits)";
}
