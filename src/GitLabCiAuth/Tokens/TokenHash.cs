using System.Buffers.Binary;

namespace GitLabCiAuth.Tokens;

/// <summary>SHA-256 of a token's bytes as a 32-byte value (four ulongs): the verified-token cache key.</summary>
public readonly struct TokenHash : IEquatable<TokenHash>
{
    private readonly ulong _a, _b, _c, _d;

    private TokenHash(ulong a, ulong b, ulong c, ulong d) { _a = a; _b = b; _c = c; _d = d; }

    /// <summary>Hashes the token into a stack buffer; no allocation.</summary>
    public static TokenHash Compute(ReadOnlySpan<byte> token)
    {
        Span<byte> h = stackalloc byte[32];
        Keys.OpenSslSha256.HashData(token, h);
        return new TokenHash(
            BinaryPrimitives.ReadUInt64BigEndian(h),
            BinaryPrimitives.ReadUInt64BigEndian(h[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(h[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(h[24..]));
    }

    /// <summary>True when this process computes the SHA-256 through OpenSSL 3 directly (<see cref="Keys.OpenSslSha256"/>), false when through .NET's.</summary>
    public static bool ComputedByOpenSsl => Keys.OpenSslSha256.IsAvailable;

    /// <summary>First 12 hex chars of the SHA-256 (the log field).</summary>
    public string ToShortHex() => (_a >> 16).ToString("x12", System.Globalization.CultureInfo.InvariantCulture);

    public bool Equals(TokenHash other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is TokenHash h && Equals(h);
    public override int GetHashCode() => (int)_b ^ (int)(_b >> 32); // already uniformly random
    public static bool operator ==(TokenHash l, TokenHash r) => l.Equals(r);
    public static bool operator !=(TokenHash l, TokenHash r) => !l.Equals(r);

    internal int ShardBits => (int)(_c & 0x7FFFFFFF);
}
