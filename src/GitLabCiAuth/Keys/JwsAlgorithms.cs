namespace GitLabCiAuth.Keys;

/// <summary>The asymmetric JWS algorithms the plugin can ever accept. <c>none</c> and HS* are deliberately absent.</summary>
public enum JwsAlgorithm
{
    RS256, RS384, RS512,
    PS256, PS384, PS512,
    ES256, ES384, ES512,
}

/// <summary>Key type of a JWK we import.</summary>
public enum JwkKeyType { Rsa, EC }

/// <summary>Named EC curves (RFC 7518 §6.2.1.1).</summary>
public enum JwkCurve { None, P256, P384, P521 }

public static class JwsAlgorithms
{
    public const int Count = 9;

    public static string Name(JwsAlgorithm alg) => alg switch
    {
        JwsAlgorithm.RS256 => "RS256",
        JwsAlgorithm.RS384 => "RS384",
        JwsAlgorithm.RS512 => "RS512",
        JwsAlgorithm.PS256 => "PS256",
        JwsAlgorithm.PS384 => "PS384",
        JwsAlgorithm.PS512 => "PS512",
        JwsAlgorithm.ES256 => "ES256",
        JwsAlgorithm.ES384 => "ES384",
        JwsAlgorithm.ES512 => "ES512",
        _ => throw new ArgumentOutOfRangeException(nameof(alg)),
    };

    /// <summary>Exact (case-sensitive, as RFC 7515 requires) parse.</summary>
    public static bool TryParse(string? s, out JwsAlgorithm alg) => TryParse(s.AsSpan(), out alg);

    public static bool TryParse(ReadOnlySpan<char> s, out JwsAlgorithm alg)
    {
        alg = default;
        if (s.Length != 5) return false;
        JwsAlgorithm? r = s switch
        {
            "RS256" => JwsAlgorithm.RS256,
            "RS384" => JwsAlgorithm.RS384,
            "RS512" => JwsAlgorithm.RS512,
            "PS256" => JwsAlgorithm.PS256,
            "PS384" => JwsAlgorithm.PS384,
            "PS512" => JwsAlgorithm.PS512,
            "ES256" => JwsAlgorithm.ES256,
            "ES384" => JwsAlgorithm.ES384,
            "ES512" => JwsAlgorithm.ES512,
            _ => null,
        };
        if (r is null) return false;
        alg = r.Value;
        return true;
    }

    public static bool TryParse(ReadOnlySpan<byte> utf8, out JwsAlgorithm alg)
    {
        alg = default;
        if (utf8.Length != 5) return false;
        Span<char> c = stackalloc char[5];
        for (var i = 0; i < 5; i++)
        {
            if (utf8[i] > 0x7F) return false;
            c[i] = (char)utf8[i];
        }
        return TryParse((ReadOnlySpan<char>)c, out alg);
    }

    public static JwkKeyType KeyTypeOf(JwsAlgorithm alg) =>
        alg >= JwsAlgorithm.ES256 ? JwkKeyType.EC : JwkKeyType.Rsa;

    /// <summary>The curve an ES* algorithm requires (RFC 7518 §3.4), or None for RSA algorithms.</summary>
    public static JwkCurve CurveOf(JwsAlgorithm alg) => alg switch
    {
        JwsAlgorithm.ES256 => JwkCurve.P256,
        JwsAlgorithm.ES384 => JwkCurve.P384,
        JwsAlgorithm.ES512 => JwkCurve.P521,
        _ => JwkCurve.None,
    };

    /// <summary>True when <paramref name="alg"/> can be used with a key of this type/curve.</summary>
    public static bool FitsKey(JwsAlgorithm alg, JwkKeyType kty, JwkCurve crv) =>
        KeyTypeOf(alg) == kty && (kty == JwkKeyType.Rsa || CurveOf(alg) == crv);
}
