using System.Text;
using GitLabCiAuth.Tokens;

namespace Bench;

/// <summary>
/// `--cache-footprint N`: validates N distinct GitLab-shaped tokens through one GitLabTokenValidator (static JWKS) and
/// reports the managed heap retained per cached token after a full GC (the verified-token cache's share of the RSS).
/// </summary>
public static class CacheFootprint
{
    public static int Run(int n)
    {
        var headers = new byte[n][];
        Parallel.For(0, n, i => headers[i] = Encoding.ASCII.GetBytes("Bearer " + Fixtures.Minter.Mint()));
        using var v = new GitLabTokenValidator(new TokenValidationOptions
        {
            Issuer = Fixtures.Issuer, Audiences = [Fixtures.Audience], StaticJwks = Fixtures.StaticJwks, VerifiedTokenCacheSize = Math.Max(n, 1),
        });
        if (!v.ValidateAsync(headers[0].AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        long before = Heap();
        for (int i = 1; i < n; i++)
            if (!v.ValidateAsync(headers[i].AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        long after = Heap();
        int tokenBytes = headers[0].Length - 7;
        Console.WriteLine($"{v.Cache.Count:N0} cached tokens: {(after - before) / (double)(n - 1):F0} B retained per cached token " +
                          $"(token {tokenBytes} B); {(after - before) / 1048576.0:F1} MB for {n - 1:N0} tokens");
        GC.KeepAlive(headers);
        return 0;
    }

    private static long Heap()
    {
        for (int i = 0; i < 3; i++) { GC.Collect(2, GCCollectionMode.Forced, true, true); GC.WaitForPendingFinalizers(); }
        return GC.GetTotalMemory(true);
    }
}
