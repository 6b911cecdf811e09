using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using Microsoft.IdentityModel.Tokens;

namespace GitLabCiAuth.Tests.Keys;

public sealed class OpenSslRs256Tests
{
    private static OpenSslRs256 Verifier(RSA rsa)
    {
        var p = rsa.ExportParameters(false);
        return OpenSslRs256.Create(p.Modulus!, p.Exponent!) ?? throw new InvalidOperationException("the direct RS256 path is not available");
    }

    private static (byte[] Digest, byte[] Signature) Signed(RSA rsa, string text)
    {
        var data = Encoding.ASCII.GetBytes(text);
        return (SHA256.HashData(data), rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    [Fact]
    public void Is_available_on_linux_with_openssl_3()
    {
        // The product's images and CI run on OpenSSL 3: the direct path must be the one in use there.
        Assert.True(OperatingSystem.IsLinux() && SafeEvpPKeyHandle.OpenSslVersion >> 28 == 3);
        Assert.True(OpenSslRs256.IsAvailable);
    }

    [Theory]
    [InlineData(2048)]
    [InlineData(3072)]
    [InlineData(4096)]
    public void Accepts_exactly_what_dotnet_accepts(int bits)
    {
        using var rsa = RSA.Create(bits);
        using var other = RSA.Create(bits);
        var v = Verifier(rsa);
        var (digest, sig) = Signed(rsa, "eyJhbGciOiJSUzI1NiJ9.eyJwcm9qZWN0X2lkIjoiNDIifQ");
        var (_, otherSig) = Signed(other, "eyJhbGciOiJSUzI1NiJ9.eyJwcm9qZWN0X2lkIjoiNDIifQ");

        var cases = new List<(byte[] Digest, byte[] Signature)>
        {
            (digest, sig),
            (Flip(digest, 0), sig),
            (Flip(digest, 31), sig),
            (digest, Flip(sig, 0)),
            (digest, Flip(sig, sig.Length / 2)),
            (digest, Flip(sig, sig.Length - 1)),
            (digest, sig[1..]),
            (digest, [.. sig, 0]),
            (digest, [0, .. sig]),
            (digest, otherSig),
            (digest, new byte[sig.Length]),
            (digest, Enumerable.Repeat((byte)0xFF, sig.Length).ToArray()), // above the modulus
            (digest, [1]),
        };
        foreach (var (d, s) in cases)
            Assert.Equal(rsa.VerifyHash(d, s, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), v.VerifyHash(d, s));
        Assert.True(v.VerifyHash(digest, sig));
    }

    [Fact]
    public void Refuses_a_digest_that_is_not_sha256_sized_and_an_empty_signature()
    {
        using var rsa = RSA.Create(2048);
        var v = Verifier(rsa);
        var (digest, sig) = Signed(rsa, "a.b");
        Assert.False(v.VerifyHash(digest[..31], sig));
        Assert.False(v.VerifyHash([.. digest, 0], sig));
        Assert.False(v.VerifyHash(digest, []));
    }

    [Fact]
    public void A_signature_made_with_pss_is_refused()
    {
        using var rsa = RSA.Create(2048);
        var data = "a.b"u8.ToArray();
        var pss = rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pss);
        Assert.False(Verifier(rsa).VerifyHash(SHA256.HashData(data), pss));
    }

    [Fact]
    public void A_refused_signature_leaves_no_error_on_the_thread()
    {
        using var rsa = RSA.Create(2048);
        var v = Verifier(rsa);
        var (digest, sig) = Signed(rsa, "a.b");
        ERR_clear_error();
        Assert.False(v.VerifyHash(digest, Flip(sig, 7)));
        Assert.Equal(0UL, ERR_peek_error());
        Assert.False(v.VerifyHash(digest, sig[..10]));
        Assert.Equal(0UL, ERR_peek_error());
        Assert.True(rsa.VerifyHash(digest, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)); // .NET still works
    }

    [Fact]
    public void Verifies_from_many_threads_at_once()
    {
        // More threads than pooled contexts: contexts are made and freed on demand, never shared.
        using var rsa = RSA.Create(2048);
        var v = Verifier(rsa);
        var (digest, sig) = Signed(rsa, "a.b");
        var bad = Flip(sig, 3);
        int wrong = 0;
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 16 }, t =>
        {
            for (int i = 0; i < 100; i++)
            {
                bool valid = (i + t) % 3 != 0;
                if (v.VerifyHash(digest, valid ? sig : bad) != valid) Interlocked.Increment(ref wrong);
            }
        });
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void Verifiers_dropped_with_pooled_contexts_are_freed_without_harm()
    {
        // Keys replaced by a rotation become garbage with their prepared contexts; the finalizer frees those.
        using var rsa = RSA.Create(2048);
        var (digest, sig) = Signed(rsa, "a.b");
        void UseAndDrop()
        {
            for (int i = 0; i < 200; i++) Assert.True(Verifier(rsa).VerifyHash(digest, sig));
        }
        UseAndDrop();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.True(Verifier(rsa).VerifyHash(digest, sig));
        Assert.True(rsa.VerifyHash(digest, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    [Fact]
    public void Jwks_rsa_keys_for_rs256_take_the_direct_path_and_others_do_not()
    {
        using var rs256 = MinterKey.CreateRsa();
        using var rs384 = MinterKey.CreateRsa();
        using var noAlg = MinterKey.CreateRsa();
        using var ec = MinterKey.CreateEc();
        var json = "{\"keys\":[" + string.Join(",", rs256.PublicJwkJson(), rs384.PublicJwkJson(alg: "RS384"), noAlg.PublicJwkJson(alg: null), ec.PublicJwkJson()) + "]}";
        var set = JwksParser.Parse(Encoding.UTF8.GetBytes(json), null, null).Set!;

        Assert.True(Key(set, rs256.Kid).VerifiesRs256Directly);
        Assert.True(Key(set, noAlg.Kid).VerifiesRs256Directly);
        Assert.False(Key(set, rs384.Kid).VerifiesRs256Directly);
        Assert.False(Key(set, ec.Kid).VerifiesRs256Directly);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_signing_key_verifies_the_same_with_and_without_the_direct_path(bool direct)
    {
        using var minter = MinterKey.CreateRsa();
        var p = minter.Rsa!.ExportParameters(false);
        var key = new SigningKey(minter.Kid, JwkKeyType.Rsa, JwkCurve.None, JwsAlgorithm.RS256, 2048, new RsaSecurityKey(minter.Rsa), "fp",
            direct ? OpenSslRs256.Create(p.Modulus!, p.Exponent!) : null);
        Assert.Equal(direct, key.VerifiesRs256Directly);
        var input = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGgifQ"u8.ToArray();
        var sig = minter.Sign("RS256", input);
        var padded = new byte[input.Length + 5];
        input.CopyTo(padded, 0); // the validator passes a rented buffer and a length

        Assert.True(key.Verify(JwsAlgorithm.RS256, padded, input.Length, sig, sig.Length));
        Assert.False(key.Verify(JwsAlgorithm.RS256, padded, input.Length - 1, sig, sig.Length));
        Assert.False(key.Verify(JwsAlgorithm.RS256, padded, input.Length, Flip(sig, 9), sig.Length));
        Assert.False(key.Verify(JwsAlgorithm.RS256, padded, input.Length, sig, sig.Length - 1));
        Assert.False(key.Verify(JwsAlgorithm.PS256, padded, input.Length, sig, sig.Length)); // the JWK says RS256
    }

    private static SigningKey Key(KeySet set, string kid) => set.TryGetKey(kid, out var k) ? k : throw new KeyNotFoundException(kid);

    private static byte[] Flip(byte[] bytes, int index)
    {
        var copy = (byte[])bytes.Clone();
        copy[index] ^= 0x01;
        return copy;
    }

    [DllImport("libcrypto.so.3")] private static extern ulong ERR_peek_error();
    [DllImport("libcrypto.so.3")] private static extern void ERR_clear_error();
}
