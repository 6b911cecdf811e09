using System.Security.Cryptography;
using System.Text;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Tokens;

public sealed class BearerTokenExtractorTests
{
    private const string Jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    [Theory]
    [InlineData("Bearer " + Jwt)]
    [InlineData("bearer " + Jwt)]
    [InlineData("BEARER " + Jwt)]
    [InlineData("Bearer    " + Jwt)]
    [InlineData("\tBearer\t" + Jwt + "  ")]
    [InlineData("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")] // empty signature still has the shape
    public void Extracts_the_token(string header)
    {
        var bytes = Encoding.ASCII.GetBytes(header);
        Assert.Equal(ExtractStatus.Ok, BearerTokenExtractor.Extract(bytes, 8192, out var range));
        Assert.Equal(header.Trim().Split(' ', '\t').Last(s => s.Length > 0), Encoding.ASCII.GetString(bytes.AsSpan()[range]));
    }

    [Theory]
    [InlineData("", ExtractStatus.Missing)]
    [InlineData(" \t ", ExtractStatus.Missing)]
    [InlineData("Bearer", ExtractStatus.Malformed)]
    [InlineData("Bearer ", ExtractStatus.Malformed)]
    [InlineData(Jwt, ExtractStatus.Malformed)]
    [InlineData("Basic " + Jwt, ExtractStatus.Malformed)]
    [InlineData("Bearer " + Jwt + " " + Jwt, ExtractStatus.Malformed)]
    [InlineData("Bearer a.b", ExtractStatus.Malformed)]
    [InlineData("Bearer a.b.c.d", ExtractStatus.Malformed)]
    [InlineData("Bearer a+b.c.d", ExtractStatus.Malformed)]
    [InlineData("Bearer ab/c.def.ghi", ExtractStatus.Malformed)]
    [InlineData("Bearer abcd=.efgh.ijkl", ExtractStatus.Malformed)]
    [InlineData("Bearer abcde.efgh.ijkl", ExtractStatus.Malformed)] // 5 chars: impossible base64 length
    [InlineData("Bearer ab\u00e9c.d.e", ExtractStatus.Malformed)]
    public void Rejects(string header, ExtractStatus expected)
    {
        Assert.Equal(expected, BearerTokenExtractor.Extract(Encoding.UTF8.GetBytes(header), 8192, out _));
    }

    /// <summary>A token of real size (segments of hundreds of bytes): a foreign byte is found wherever it sits.</summary>
    [Theory]
    [InlineData((byte)'+')]
    [InlineData((byte)'/')]
    [InlineData((byte)'=')]
    [InlineData((byte)'.')]
    [InlineData((byte)'*')]
    [InlineData((byte)0)]
    [InlineData((byte)0x7F)]
    [InlineData((byte)0xC3)]
    [InlineData((byte)('Z' + 1))]
    [InlineData((byte)('z' + 1))]
    public void A_foreign_byte_anywhere_in_a_long_token_is_malformed(byte foreign)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        var segment = new StringBuilder();
        for (int i = 0; i < 600; i++) segment.Append(alphabet[i % alphabet.Length]);
        var good = Encoding.ASCII.GetBytes("Bearer " + segment + "." + segment + "." + segment);
        Assert.Equal(ExtractStatus.Ok, BearerTokenExtractor.Extract(good, 8192, out _));
        int tokenStart = "Bearer ".Length;
        for (int at = tokenStart; at < good.Length; at++)
        {
            if (good[at] == (byte)'.') continue;
            var bad = (byte[])good.Clone();
            bad[at] = foreign;
            Assert.Equal(ExtractStatus.Malformed, BearerTokenExtractor.Extract(bad, 8192, out _));
        }
    }

    [Fact]
    public void Size_is_checked_first()
    {
        var token = new string('a', 300) + ".bb.cc";
        Assert.Equal(ExtractStatus.TooLarge, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes("Bearer " + token), 256, out _));
        Assert.Equal(ExtractStatus.Ok, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes("Bearer " + token), 306, out _));
        // Huge junk is too large before anything else looks at it.
        Assert.Equal(ExtractStatus.TooLarge, BearerTokenExtractor.Extract(new byte[100_000], 8192, out _));
        Assert.Equal(ExtractStatus.TooLarge, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes("Basic " + new string('!', 9000)), 8192, out _));
    }

    [Fact]
    public void Bare_token_only_when_allowed()
    {
        Assert.Equal(ExtractStatus.Malformed, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes(Jwt), 8192, allowBareToken: false, out _));
        Assert.Equal(ExtractStatus.Ok, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes(Jwt), 8192, allowBareToken: true, out _));
        Assert.Equal(ExtractStatus.Malformed, BearerTokenExtractor.Extract(Encoding.ASCII.GetBytes("Basic " + Jwt), 8192, allowBareToken: true, out _));
    }

    [Fact]
    public void Extraction_and_hashing_allocate_nothing()
    {
        var header = Encoding.ASCII.GetBytes("Bearer " + Jwt);
        for (var i = 0; i < 10; i++) Run(header);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) Run(header);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Run(byte[] header)
        {
            if (BearerTokenExtractor.Extract(header, 8192, out var r) != ExtractStatus.Ok) throw new InvalidOperationException();
            _ = TokenHash.Compute(header.AsSpan()[r]);
        }
    }

    [Fact]
    public void Token_hash_is_sha256_and_short_hex_is_its_first_12_chars()
    {
        var bytes = Encoding.ASCII.GetBytes(Jwt);
        var a = TokenHash.Compute(bytes);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes))[..12], a.ToShortHex());
        Assert.Equal(a, TokenHash.Compute(bytes));
        Assert.NotEqual(a, TokenHash.Compute(Encoding.ASCII.GetBytes(Jwt + "x")));
    }
}
