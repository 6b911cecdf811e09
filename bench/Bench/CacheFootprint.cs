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
        // the options a route's config compiles to (so the claims kept per token are the config's)
        var config = new GitLabCiAuth.Plugin.GitLabCiAuthConfig
        {
            Issuer = Fixtures.Issuer, Audiences = [Fixtures.Audience], StaticJwks = Fixtures.StaticJwks, VerifiedTokenCacheSize = Math.Max(n, 1),
            RequiredClaims = [.. TokenValidationOptions.DefaultRequiredClaims],
            UpstreamHeaders = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(GitLabCiAuth.Plugin.GitLabCiAuthSchema.DefaultUpstreamHeadersJson)!,
            Rules = [new GitLabCiAuth.Policy.RuleConfig { Name = "any", Claims = new() { ["project_id"] = ["*"] } }],
        };
        using var v = new GitLabTokenValidator(GitLabCiAuth.Plugin.GitLabCiAuthPlugin.Compile(config).TokenOptions);
        if (!v.ValidateAsync(headers[0].AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        long before = Heap();
        for (int i = 1; i < n; i++)
            if (!v.ValidateAsync(headers[i].AsSpan()).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("token rejected");
        long after = Heap();
        int tokenBytes = headers[0].Length - 7;
        Console.WriteLine($"{v.Cache.Count:N0} cached tokens: {(after - before) / (double)(n - 1):F0} B retained per cached token " +
                          $"(token {tokenBytes} B); {(after - before) / 1048576.0:F1} MB for {n - 1:N0} tokens");
        var info = GC.GetGCMemoryInfo();
        Console.WriteLine($"heap {info.HeapSizeBytes / 1048576.0:F1} MB, fragmented {info.FragmentedBytes / 1048576.0:F1} MB, " +
                          $"committed {info.TotalCommittedBytes / 1048576.0:F1} MB, working set {Environment.WorkingSet / 1048576.0:F1} MB");
        GC.KeepAlive(headers);
        return 0;
    }

    private static long Heap()
    {
        for (int i = 0; i < 3; i++) { GC.Collect(2, GCCollectionMode.Forced, true, true); GC.WaitForPendingFinalizers(); }
        if (Environment.GetEnvironmentVariable("AGGRESSIVE") == "1") GC.Collect(2, GCCollectionMode.Aggressive, true, true);
        return GC.GetTotalMemory(true);
    }
}
