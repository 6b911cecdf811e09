using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace GitLabCiAuth.Testing;

/// <summary>
/// A signing key pair for minting test tokens (RSA or EC), with its public JWK and RFC 7638 thumbprint.
/// GitLab's kid is the thumbprint; <see cref="Kid"/> defaults to it but can be forced (e.g. to reuse another key's kid).
/// </summary>
public sealed class MinterKey : IDisposable
{
    private MinterKey(RSA? rsa, ECDsa? ecdsa, string? crv, string? kid)
    {
        Rsa = rsa;
        Ecdsa = ecdsa;
        Curve = crv;
        Thumbprint = ComputeThumbprint();
        Kid = kid ?? Thumbprint;
    }

    public static MinterKey CreateRsa(int bits = 2048, string? kid = null) => new(RSA.Create(bits), null, null, kid);

    /// <summary>EC key on P-256, P-384 or P-521.</summary>
    public static MinterKey CreateEc(string crv = "P-256", string? kid = null)
    {
        var curve = crv switch
        {
            "P-256" => ECCurve.NamedCurves.nistP256,
            "P-384" => ECCurve.NamedCurves.nistP384,
            "P-521" => ECCurve.NamedCurves.nistP521,
            _ => throw new ArgumentOutOfRangeException(nameof(crv)),
        };
        return new(null, ECDsa.Create(curve), crv, kid);
    }

    /// <summary>The same key material under another kid.</summary>
    public MinterKey WithKid(string kid) => new(Rsa, Ecdsa, Curve, kid);

    public RSA? Rsa { get; }
    public ECDsa? Ecdsa { get; }

    /// <summary>"P-256" etc. for EC keys; null for RSA.</summary>
    public string? Curve { get; }

    public string Kid { get; }

    /// <summary>RFC 7638 JWK thumbprint (SHA-256, base64url).</summary>
    public string Thumbprint { get; }

    public string KeyType => Rsa is not null ? "RSA" : "EC";

    /// <summary>RS256 for RSA; ES256/384/512 by curve for EC.</summary>
    public string DefaultAlgorithm => Curve switch
    {
        null => "RS256",
        "P-256" => "ES256",
        "P-384" => "ES384",
        _ => "ES512",
    };

    /// <summary>SubjectPublicKeyInfo PEM of the public key.</summary>
    public string PublicKeyPem => Rsa is not null ? Rsa.ExportSubjectPublicKeyInfoPem() : Ecdsa!.ExportSubjectPublicKeyInfoPem();

    /// <summary>Writes the public JWK as GitLab does (<c>kty, kid, e, n, use, alg</c>); null use/alg are omitted.</summary>
    public void WritePublicJwk(Utf8JsonWriter w, string? alg = "default", string? use = "sig", string? kid = null)
    {
        w.WriteStartObject();
        w.WriteString("kty", KeyType);
        w.WriteString("kid", kid ?? Kid);
        if (Rsa is not null)
        {
            var p = Rsa.ExportParameters(false);
            w.WriteString("e", Base64Url.EncodeToString(p.Exponent));
            w.WriteString("n", Base64Url.EncodeToString(p.Modulus));
        }
        else
        {
            var p = Ecdsa!.ExportParameters(false);
            w.WriteString("crv", Curve);
            w.WriteString("x", Base64Url.EncodeToString(p.Q.X));
            w.WriteString("y", Base64Url.EncodeToString(p.Q.Y));
        }
        if (use is not null) w.WriteString("use", use);
        if (alg is not null) w.WriteString("alg", alg == "default" ? DefaultAlgorithm : alg);
        w.WriteEndObject();
    }

    public string PublicJwkJson(string? alg = "default", string? use = "sig", string? kid = null)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) WritePublicJwk(w, alg, use, kid);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>A JWKS document holding the given keys' public JWKs.</summary>
    public static string JwksJson(params MinterKey[] keys)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("keys");
            foreach (var k in keys) k.WritePublicJwk(w);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Signs <paramref name="data"/> with a JWS algorithm (RS*, PS*, ES*; raw R||S for ECDSA).</summary>
    public byte[] Sign(string alg, ReadOnlySpan<byte> data)
    {
        var hash = alg[2..] switch
        {
            "256" => HashAlgorithmName.SHA256,
            "384" => HashAlgorithmName.SHA384,
            "512" => HashAlgorithmName.SHA512,
            _ => throw new ArgumentOutOfRangeException(nameof(alg)),
        };
        return alg[..2] switch
        {
            "RS" => (Rsa ?? throw new InvalidOperationException("not an RSA key")).SignData(data.ToArray(), hash, RSASignaturePadding.Pkcs1),
            "PS" => (Rsa ?? throw new InvalidOperationException("not an RSA key")).SignData(data.ToArray(), hash, RSASignaturePadding.Pss),
            "ES" => LowS((Ecdsa ?? throw new InvalidOperationException("not an EC key")).SignData(data.ToArray(), hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)),
            _ => throw new ArgumentOutOfRangeException(nameof(alg)),
        };
    }

    /// <summary>The curve's group order n (big-endian, the width of one signature half).</summary>
    public byte[] CurveOrder() => Curve switch
    {
        "P-256" => Convert.FromHexString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"),
        "P-384" => Convert.FromHexString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973"),
        "P-521" => Convert.FromHexString("01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"),
        _ => throw new InvalidOperationException("not an EC key"),
    };

    /// <summary>The other valid signature of the same message: (r, n - s). Used to mint a signature's high-S twin.</summary>
    public byte[] Twin(byte[] signature)
    {
        var n = new System.Numerics.BigInteger(CurveOrder(), isUnsigned: true, isBigEndian: true);
        int half = signature.Length / 2;
        var s = new System.Numerics.BigInteger(signature.AsSpan(half), isUnsigned: true, isBigEndian: true);
        var twin = (byte[])signature.Clone();
        var t = (n - s).ToByteArray(isUnsigned: true, isBigEndian: true);
        Array.Clear(twin, half, half);
        t.CopyTo(twin, signature.Length - t.Length);
        return twin;
    }

    // ECDSA signs with a random s; GitLab's tokens (and the validator) use the low-S form, s <= n/2
    private byte[] LowS(byte[] signature)
    {
        var n = new System.Numerics.BigInteger(CurveOrder(), isUnsigned: true, isBigEndian: true);
        var s = new System.Numerics.BigInteger(signature.AsSpan(signature.Length / 2), isUnsigned: true, isBigEndian: true);
        return s > n / 2 ? Twin(signature) : signature;
    }

    private string ComputeThumbprint()
    {
        // RFC 7638: required members only, lexicographic order, no whitespace.
        string json;
        if (Rsa is not null)
        {
            var p = Rsa.ExportParameters(false);
            json = $"{{\"e\":\"{Base64Url.EncodeToString(p.Exponent)}\",\"kty\":\"RSA\",\"n\":\"{Base64Url.EncodeToString(p.Modulus)}\"}}";
        }
        else
        {
            var p = Ecdsa!.ExportParameters(false);
            json = $"{{\"crv\":\"{Curve}\",\"kty\":\"EC\",\"x\":\"{Base64Url.EncodeToString(p.Q.X)}\",\"y\":\"{Base64Url.EncodeToString(p.Q.Y)}\"}}";
        }
        return Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(json)));
    }

    public void Dispose()
    {
        Rsa?.Dispose();
        Ecdsa?.Dispose();
    }
}
