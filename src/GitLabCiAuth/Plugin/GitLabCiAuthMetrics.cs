using System.Collections.Concurrent;
using GitLabCiAuth.Policy;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Plugin;

/// <summary>
/// Process-wide counters of what the plugin decided (exposed as Prometheus metrics by the host), per route: the
/// route id Kong put in the instance config (<see cref="Kong.PluginServer.Pdk.KongPdk.Scope"/>, no PDK call), or
/// <c>""</c> for a plugin on a service or global.
/// </summary>
public static class GitLabCiAuthMetrics
{
    private static readonly ConcurrentDictionary<(string Route, string Outcome, string Code), long> s_decisions = new();
    private static readonly ConcurrentDictionary<(string Route, string Rule), long> s_ruleHits = new();
    private static readonly ConcurrentDictionary<(string Route, string Code), long> s_wouldDeny = new();

    public static IEnumerable<KeyValuePair<(string Route, string Outcome, string Code), long>> Decisions => s_decisions;
    public static IEnumerable<KeyValuePair<(string Route, string Rule), long>> RuleHits => s_ruleHits;
    public static IEnumerable<KeyValuePair<(string Route, string Code), long>> WouldDenyByCode => s_wouldDeny;

    /// <summary>The <c>route</c> label of an event: its instance's route id, or <c>""</c>.</summary>
    internal static string Route(Kong.PluginServer.Pdk.KongPdk kong) => kong.Scope.RouteId ?? "";

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

    internal static void Token(string route, TokenResult r)
    {
        if (!r.IsValid) s_decisions.AddOrUpdate((route, "deny", r.ErrorCode!), 1, static (_, v) => v + 1);
    }

    internal static void Policy(string route, PolicyDecision d)
    {
        s_decisions.AddOrUpdate((route, d.Allowed ? "allow" : "deny", d.Code ?? "allowed"), 1, static (_, v) => v + 1);
        if (d.Rule is not null) s_ruleHits.AddOrUpdate((route, d.Rule), 1, static (_, v) => v + 1);
    }

    internal static void WouldDeny(string route, string code) => s_wouldDeny.AddOrUpdate((route, code), 1, static (_, v) => v + 1);
}
