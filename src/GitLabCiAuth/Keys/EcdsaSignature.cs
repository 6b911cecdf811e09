namespace GitLabCiAuth.Keys;

/// <summary>
/// The canonical form of a JWS ECDSA signature (RFC 7518 §3.4: R and S as fixed-size big-endian integers). ECDSA
/// accepts both (r, s) and (r, n - s) for the same message, so without this check a token holder could mint a second
/// valid string of the same token, with another token hash (what audit logs search by). Only the low-S form
/// (s ≤ n/2) is accepted, as Bitcoin and Ethereum require; r and s must be in 1..n-1.
/// </summary>
internal static class EcdsaSignature
{
    // the group orders n of P-256, P-384 and P-521 (SEC 2), big-endian
    private static readonly byte[] s_p256 = Convert.FromHexString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    private static readonly byte[] s_p384 = Convert.FromHexString(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973");
    private static readonly byte[] s_p521 = Convert.FromHexString(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409");

    private static readonly byte[] s_p256Half = Half(s_p256);
    private static readonly byte[] s_p384Half = Half(s_p384);
    private static readonly byte[] s_p521Half = Half(s_p521);

    /// <summary>True when <paramref name="signature"/> is R‖S of the curve's size with 0 &lt; r &lt; n and 0 &lt; s ≤ n/2.</summary>
    public static bool IsCanonical(JwkCurve curve, ReadOnlySpan<byte> signature)
    {
        var (order, half) = curve switch
        {
            JwkCurve.P256 => (s_p256, s_p256Half),
            JwkCurve.P384 => (s_p384, s_p384Half),
            JwkCurve.P521 => (s_p521, s_p521Half),
            _ => (null, null),
        };
        if (order is null || signature.Length != 2 * order.Length) return false;
        var r = signature[..order.Length];
        var s = signature[order.Length..];
        return !IsZero(r) && r.SequenceCompareTo(order) < 0
            && !IsZero(s) && s.SequenceCompareTo(half) <= 0;
    }

    private static bool IsZero(ReadOnlySpan<byte> x) => x.IndexOfAnyExcept((byte)0) < 0;

    // n >> 1 in the same fixed width
    private static byte[] Half(byte[] n)
    {
        var h = new byte[n.Length];
        int carry = 0;
        for (int i = 0; i < n.Length; i++)
        {
            h[i] = (byte)((n[i] >> 1) | (carry << 7));
            carry = n[i] & 1;
        }
        return h;
    }
}
