using System.Security.Cryptography;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Keys;

public sealed class OpenSslSha256Tests
{
    [Fact]
    public void Is_available_on_linux_with_openssl_3()
    {
        // The product's images and CI run on OpenSSL 3: the direct digest must be the one in use there.
        Assert.True(OperatingSystem.IsLinux() && SafeEvpPKeyHandle.OpenSslVersion >> 28 == 3);
        Assert.True(OpenSslSha256.IsAvailable);
        Assert.True(TokenHash.ComputedByOpenSsl);
    }

    [Fact]
    public void Digests_equal_dotnets_at_every_length_up_to_a_few_blocks_and_at_token_sizes()
    {
        var data = new byte[5000];
        new Random(20261204).NextBytes(data);
        Span<byte> ours = stackalloc byte[32];
        var lengths = Enumerable.Range(0, 300).Concat([511, 512, 513, 1000, 1817, 4096, 5000]);
        foreach (int length in lengths)
        {
            ours.Clear();
            OpenSslSha256.HashData(data.AsSpan(0, length), ours);
            Assert.Equal(Convert.ToHexString(SHA256.HashData(data.AsSpan(0, length))), Convert.ToHexString(ours));
        }
    }

    [Fact]
    public void Writes_the_first_32_bytes_of_a_larger_destination_and_refuses_a_smaller_one()
    {
        var destination = Enumerable.Repeat((byte)0xEE, 40).ToArray();
        OpenSslSha256.HashData("abc"u8, destination);
        Assert.Equal("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", Convert.ToHexString(destination, 0, 32));
        Assert.All(destination[32..], b => Assert.Equal(0xEE, b));
        Assert.Throws<ArgumentException>(() => OpenSslSha256.HashData("abc"u8, new byte[31]));
    }

    [Fact]
    public void Many_threads_at_once_get_the_same_digests()
    {
        var inputs = Enumerable.Range(0, 64).Select(i => Enumerable.Range(0, 900 + i).Select(j => (byte)(i ^ j)).ToArray()).ToArray();
        var expected = inputs.Select(i => Convert.ToHexString(SHA256.HashData(i))).ToArray();
        Parallel.For(0, 16, _ =>
        {
            var d = new byte[32];
            for (int round = 0; round < 200; round++)
                for (int i = 0; i < inputs.Length; i++)
                {
                    OpenSslSha256.HashData(inputs[i], d);
                    Assert.Equal(expected[i], Convert.ToHexString(d));
                }
        });
    }

    [Fact]
    public void The_token_cache_key_is_the_tokens_sha256()
    {
        var token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"u8.ToArray();
        var h = SHA256.HashData(token);
        // the log's short form is the digest's first 12 hex characters
        Assert.Equal(Convert.ToHexStringLower(h)[..12], TokenHash.Compute(token).ToShortHex());
    }
}
