using System.Collections.Concurrent;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Plugin;

/// <summary>Process-wide counters of what the plugin decided (exposed as Prometheus metrics by the host).</summary>
public static class GitLabCiAuthMetrics
{
    private static readonly ConcurrentDictionary<(string Outcome, string Code), long> s_decisions = new();
    private static readonly ConcurrentDictionary<string, long> s_ruleHits = new();
    private static readonly ConcurrentDictionary<string, long> s_wouldDeny = new();

    public static IEnumerable<KeyValuePair<(string Outcome, string Code), long>> Decisions => s_decisions;
    public static IEnumerable<KeyValuePair<string, long>> RuleHits => s_ruleHits;
    public static IEnumerable<KeyValuePair<string, long>> WouldDenyByCode => s_wouldDeny;

    private static readonly ConcurrentDictionary<VerifiedTokenCache, byte> s_caches = new();
    private static long s_retiredHits, s_retiredMisses;

    /// <summary>Verified-token cache hits and misses over every live and retired cache; entries in live caches.</summary>
    public static (long Hits, long Misses, long Size) TokenCache
    {
        get
        {
            long hits = Interlocked.Read(ref s_retiredHits), misses = Interlocked.Read(ref s_retiredMisses), size = 0;
            foreach (var c in s_caches.Keys) { hits += c.Hits; misses += c.Misses; size += c.Count; }
            return (hits, misses, size);
        }
    }

    internal static void Track(VerifiedTokenCache cache) => s_caches.TryAdd(cache, 0);

    internal static void Untrack(VerifiedTokenCache cache)
    {
        if (!s_caches.TryRemove(cache, out _)) return;
        Interlocked.Add(ref s_retiredHits, cache.Hits);
        Interlocked.Add(ref s_retiredMisses, cache.Misses);
    }

    internal static void Token(TokenResult r)
    {
        if (!r.IsValid) s_decisions.AddOrUpdate(("deny", r.ErrorCode!), 1, static (_, v) => v + 1);
    }

    internal static void Policy(PolicyDecision d)
    {
        s_decisions.AddOrUpdate((d.Allowed ? "allow" : "deny", d.Code ?? "allowed"), 1, static (_, v) => v + 1);
        if (d.Rule is not null) s_ruleHits.AddOrUpdate(d.Rule, 1, static (_, v) => v + 1);
    }

    internal static void WouldDeny(string code) => s_wouldDeny.AddOrUpdate(code, 1, static (_, v) => v + 1);
}
