using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace GitLabCiAuth.Keys;

/// <summary>
/// SHA-256 through OpenSSL 3's one-shot <c>EVP_Digest</c> with the algorithm fetched once per process. .NET's
/// <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> allocates and frees a digest context and clears the
/// thread's OpenSSL error queue on every call: 0.92 us for a 1,000-byte token against 0.64 us here on the benchmark
/// machine (bench/README.md, "SHA-256 through OpenSSL"). Every request hashes its token (the verified-token cache's
/// key), and a new token hashes its signing input too.
/// <para>
/// Used only when .NET itself runs on OpenSSL 3 and known answers agree with .NET's SHA-256 once per process;
/// otherwise, and if a call ever fails, the digest is .NET's.
/// </para>
/// </summary>
internal static unsafe partial class OpenSslSha256
{
    private const string LibCrypto = OpenSsl.LibCrypto;
    private static readonly nint s_md = Fetch(); // EVP_MD*, kept for the process's life; 0 when not used

    /// <summary>True when this process hashes through OpenSSL directly (decided once).</summary>
    public static bool IsAvailable => s_md != 0;

    /// <summary>Writes the SHA-256 of <paramref name="data"/> into the first 32 bytes of <paramref name="destination"/>.</summary>
    public static void HashData(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (destination.Length < 32) throw new ArgumentException("a SHA-256 needs 32 bytes", nameof(destination));
        nint md = s_md;
        if (md != 0 && Digest(md, data, destination)) return;
        SHA256.HashData(data, destination);
    }

    private static bool Digest(nint md, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        uint length = 0;
        int rc;
        fixed (byte* d = data)
        fixed (byte* o = destination)
            rc = EVP_Digest(d, (nuint)data.Length, o, &length, md, 0);
        if (rc == 1 && length == 32) return true;
        OpenSsl.ClearErrors();
        return false;
    }

    private static nint Fetch()
    {
        try
        {
            if (!OpenSsl.DotNetUsesVersion3) return 0;
            nint md = EVP_MD_fetch(0, "SHA256", 0);
            if (md == 0) { OpenSsl.ClearErrors(); return 0; }
            if (AgreesWithDotNet(md)) return md;
            EVP_MD_free(md);
            return 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or PlatformNotSupportedException)
        {
            return 0;
        }
    }

    /// <summary>Known answers: the empty input, "abc" (FIPS 180-2's vector) and inputs around the 64-byte block, as .NET hashes them.</summary>
    private static bool AgreesWithDotNet(nint md)
    {
        Span<byte> ours = stackalloc byte[32], theirs = stackalloc byte[32];
        if (!Digest(md, "abc"u8, ours)
            || Convert.ToHexString(ours) != "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")
            return false;
        var input = new byte[1100];
        for (int i = 0; i < input.Length; i++) input[i] = (byte)(i * 31 + 7);
        foreach (int length in (int[])[0, 1, 55, 56, 63, 64, 65, 1000, 1100])
        {
            if (!Digest(md, input.AsSpan(0, length), ours)) return false;
            SHA256.HashData(input.AsSpan(0, length), theirs);
            if (!ours.SequenceEqual(theirs)) return false;
        }
        return true;
    }

    [LibraryImport(LibCrypto, StringMarshalling = StringMarshalling.Utf8)] private static partial nint EVP_MD_fetch(nint libctx, string algorithm, nint properties);
    [LibraryImport(LibCrypto)] private static partial void EVP_MD_free(nint md);
    [LibraryImport(LibCrypto)] private static partial int EVP_Digest(byte* data, nuint count, byte* md, uint* size, nint type, nint engine);
}
