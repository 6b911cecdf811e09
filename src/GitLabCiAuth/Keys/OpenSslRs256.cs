using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace GitLabCiAuth.Keys;

/// <summary>
/// RS256 verification straight through OpenSSL 3's <c>EVP_PKEY_verify</c> with contexts prepared once per key
/// (PKCS #1 v1.5 padding, SHA-256) and reused, on the EVP_PKEY that .NET imported. .NET's own RSA verification
/// creates, initialises and frees a context on every call, which in OpenSSL 3 fetches the algorithm from its
/// provider each time: about 4 us of a 21 us verification on the benchmark machine (bench/README.md, "RS256
/// through OpenSSL directly"). GitLab signs every ID token with RS256, so this is paid by every new token.
/// <para>
/// Fail closed: only a return of exactly 1 from OpenSSL is a valid signature; anything else is invalid and
/// leaves no error on the thread's OpenSSL error queue. The path is used only when .NET itself runs on OpenSSL 3
/// (so the EVP_PKEY and the functions called are from one library) and a built-in known-answer test passes once
/// per process; otherwise <see cref="Create"/> returns null and keys verify through Microsoft.IdentityModel.
/// </para>
/// </summary>
internal sealed unsafe partial class OpenSslRs256
{
    private const string LibCrypto = OpenSsl.LibCrypto;
    private const int RsaPkcs1Padding = 1;   // RSA_PKCS1_PADDING
    private const int PooledContexts = 4;    // one per thread verifying at once; more are made and freed on demand

    private static readonly Lazy<bool> s_available = new(SelfTest);

    private readonly SafeEvpPKeyHandle _key;
    private readonly nint[] _pool = new nint[PooledContexts];

    private OpenSslRs256(SafeEvpPKeyHandle key) => _key = key;

    /// <summary>True when this process verifies RS256 through OpenSSL directly (decided once).</summary>
    internal static bool IsAvailable => s_available.Value;

    /// <summary>A verifier for the RSA public key (<paramref name="modulus"/>, <paramref name="exponent"/>), or null when the direct path is not available.</summary>
    public static OpenSslRs256? Create(byte[] modulus, byte[] exponent) => IsAvailable ? CreateUnchecked(modulus, exponent) : null;

    private static OpenSslRs256? CreateUnchecked(byte[] modulus, byte[] exponent)
    {
        if (!OperatingSystem.IsLinux()) return null;
        using var rsa = new RSAOpenSsl(new RSAParameters { Modulus = modulus, Exponent = exponent });
        return new OpenSslRs256(rsa.DuplicateKeyHandle());
    }

    /// <summary>True only when <paramref name="signature"/> is a valid RS256 signature of <paramref name="data"/> (hashed here) under this key.</summary>
    public bool VerifyData(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        Span<byte> digest = stackalloc byte[32];
        OpenSslSha256.HashData(data, digest);
        return VerifyHash(digest, signature);
    }

    /// <summary>
    /// True only when <paramref name="signature"/> is a valid RSASSA-PKCS1-v1_5 signature of the SHA-256
    /// <paramref name="digest"/> under this key.
    /// </summary>
    public bool VerifyHash(ReadOnlySpan<byte> digest, ReadOnlySpan<byte> signature)
    {
        if (digest.Length != 32 || signature.IsEmpty) return false;
        nint ctx = Rent();
        if (ctx == 0) return false;
        int rc;
        fixed (byte* s = signature)
        fixed (byte* d = digest)
            rc = EVP_PKEY_verify(ctx, s, (nuint)signature.Length, d, (nuint)digest.Length);
        if (rc != 1) OpenSsl.ClearErrors(); // a bad signature queues OpenSSL errors; .NET's next call must not see them
        Return(ctx);
        GC.KeepAlive(this);
        return rc == 1;
    }

    private nint Rent()
    {
        for (int i = 0; i < _pool.Length; i++)
        {
            nint ctx = Interlocked.Exchange(ref _pool[i], 0);
            if (ctx != 0) return ctx;
        }
        return NewContext();
    }

    private void Return(nint ctx)
    {
        for (int i = 0; i < _pool.Length; i++)
            if (Interlocked.CompareExchange(ref _pool[i], ctx, 0) == 0) return;
        EVP_PKEY_CTX_free(ctx);
    }

    private nint NewContext()
    {
        bool added = false;
        try
        {
            _key.DangerousAddRef(ref added);
            nint ctx = EVP_PKEY_CTX_new(_key.DangerousGetHandle(), 0); // holds its own reference to the key
            if (ctx == 0) { OpenSsl.ClearErrors(); return 0; }
            if (EVP_PKEY_verify_init(ctx) != 1
                || EVP_PKEY_CTX_set_rsa_padding(ctx, RsaPkcs1Padding) != 1
                || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
            {
                EVP_PKEY_CTX_free(ctx);
                OpenSsl.ClearErrors();
                return 0;
            }
            return ctx;
        }
        finally
        {
            if (added) _key.DangerousRelease();
        }
    }

    ~OpenSslRs256()
    {
        for (int i = 0; i < _pool.Length; i++)
        {
            nint ctx = _pool[i];
            if (ctx != 0) EVP_PKEY_CTX_free(ctx);
        }
    }

    /// <summary>
    /// Once per process: .NET runs on OpenSSL 3, and a fixed RS256 signature verifies while the same signature
    /// over another digest and a flipped signature do not.
    /// </summary>
    private static bool SelfTest()
    {
        try
        {
            if (!OpenSsl.DotNetUsesVersion3) return false;
            var v = CreateUnchecked(Convert.FromBase64String(KatModulus), [1, 0, 1]);
            if (v is null) return false;
            var digest = SHA256.HashData("gitlab-ci-auth known-answer test"u8);
            var sig = Convert.FromBase64String(KatSignature);
            if (!v.VerifyHash(digest, sig)) return false;
            var otherDigest = (byte[])digest.Clone();
            otherDigest[31] ^= 1;
            var otherSig = (byte[])sig.Clone();
            otherSig[100] ^= 0x40;
            return !v.VerifyHash(otherDigest, sig) && !v.VerifyHash(digest, otherSig) && !v.VerifyHash(digest, sig.AsSpan(1));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CryptographicException or PlatformNotSupportedException)
        {
            return false;
        }
    }

    // A 2048-bit test key made for this check (its private half was discarded) and its signature of the ASCII
    // text "gitlab-ci-auth known-answer test" (RSASSA-PKCS1-v1_5, SHA-256).
    private const string KatModulus =
        "qFnWicwcZ47eZynue36ZT41tXzplAt4hewL8lR9+wLbPK6NszYLeYrnSzCuAo5NjYC2YkQZ3NxZJyIMsfrMc1t/z4RtBYJCzz7rFooLeBvZPAqFb57Ep" +
        "lcdA2Cgdv2GVXlcF1W8J9YdaDKh+TrLB2fCAY/ZklQ7DHaJlNXrEtZy+dT18uj2nULV6X31ga/49Ehc5zsP1EfK2jC0EViiqobcQo+/BeKCY8wmVR0nY" +
        "VwBdVud76y6zNgix+YtKxWpJN+/poYWyqSrofZgiW+r8YlRmj62wKgEhfhnp10Hux4xveEyX7EH2LEW8jiH69skDjmvUABPzCFTGFI5eXzwOzQ==";
    private const string KatSignature =
        "qBvVTYP3xMvKwucuKjFMxso59IxvUD0Ut6GnMg/nQY/Q/mcVmNOutCmFqnE+DD965n1g+3/jac9ZnfLeIw6zPHipmcxEA4GMIazb9vaND4ZDyY4K2Y0n" +
        "Spzs6i0NyFRQ4sg5pfNo5smfcpsnZ+SE2P5dWd5Xr2qZbyROWesuA4ACXEYqgC9+oKjFyb/WDu854Q/rz4KTpZagnE7EHMRolXLznWgPQ3Bp1sC28oK9" +
        "lSg4BMGZWKt5Xv/DjTNGHNqw81wi6lxQVxd4hq+bkeM2XCl/9BcN06iSFz6/g1BflV4mHCjfBza84qbBUAClv9evFjH8crtaIczRHQihalsKQA==";

    [LibraryImport(LibCrypto)] private static partial nint EVP_PKEY_CTX_new(nint pkey, nint engine);
    [LibraryImport(LibCrypto)] private static partial void EVP_PKEY_CTX_free(nint ctx);
    [LibraryImport(LibCrypto)] private static partial int EVP_PKEY_verify_init(nint ctx);
    [LibraryImport(LibCrypto)] private static partial int EVP_PKEY_CTX_set_rsa_padding(nint ctx, int padding);
    [LibraryImport(LibCrypto)] private static partial int EVP_PKEY_CTX_set_signature_md(nint ctx, nint md);
    [LibraryImport(LibCrypto)] private static partial nint EVP_sha256();
    [LibraryImport(LibCrypto)] private static partial int EVP_PKEY_verify(nint ctx, byte* sig, nuint siglen, byte* tbs, nuint tbslen);
}
