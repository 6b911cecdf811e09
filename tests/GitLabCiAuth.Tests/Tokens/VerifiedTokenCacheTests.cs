using System.Text;
using GitLabCiAuth.Claims;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Tokens;

public sealed class VerifiedTokenCacheTests : IDisposable
{
    private readonly ValidatorHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Cache_hit_does_no_fetch_and_returns_the_same_result_synchronously()
    {
        var v = await _h.ValidatorAsync();
        var header = Encoding.ASCII.GetBytes("Bearer " + _h.Minter.Mint());
        var first = await v.ValidateAsync(header, _h.Now);
        Assert.True(first.IsValid);
        var requests = _h.GitLab.Connections;

        var pending = v.ValidateAsync(header, _h.Now);

        Assert.True(pending.IsCompletedSuccessfully); // fast path: no await needed
        Assert.Same(first, await pending);
        Assert.Equal(1, v.Cache.Hits);
        Assert.Equal(1, v.Cache.Misses);
        Assert.Equal(1, v.Cache.Count);
        Assert.Equal(requests, _h.GitLab.Connections);
    }

    [Fact]
    public async Task Cache_hit_allocates_nothing()
    {
        var v = await _h.ValidatorAsync();
        var header = Encoding.ASCII.GetBytes("Bearer " + _h.Minter.Mint());
        var now = _h.Now;
        Assert.True((await v.ValidateAsync(header, now)).IsValid);
        for (var i = 0; i < 100; i++) Hit(v, header, now); // warm up (tiering, statics)

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) Hit(v, header, now);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);

        static void Hit(GitLabTokenValidator v, byte[] header, DateTimeOffset now)
        {
            var t = v.ValidateAsync(header.AsSpan(), now);
            if (!t.IsCompletedSuccessfully || !t.Result.IsValid) throw new InvalidOperationException("expected a cache hit");
        }
    }

    [Fact]
    public async Task Cache_hit_survives_an_issuer_outage_within_the_stale_limit()
    {
        var v = await _h.ValidatorAsync(o => o.JwksRefreshSeconds = 600);
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        _h.GitLab.Fault = FakeGitLabFault.Down;
        await _h.AdvanceAsync(TimeSpan.FromSeconds(900), v);
        Assert.True(v.Keys.Status.FetchFailures >= 1);

        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(1, v.Cache.Hits);
    }

    [Fact]
    public async Task Cache_entry_dies_when_rotation_removes_its_key()
    {
        var v = await _h.ValidatorAsync();
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(1, v.Cache.Count);

        _h.GitLab.Rotate();
        Assert.True(await v.Keys.RefreshAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        var r = await _h.ValidateAsync(v, token);
        Assert.Equal(TokenErrors.UnknownKey, r.ErrorCode);
        Assert.Equal(0, v.Cache.Hits);
        Assert.Equal(0, v.Cache.Count);
    }

    [Fact]
    public async Task Cache_entry_survives_a_key_set_change_that_keeps_its_key()
    {
        var v = await _h.ValidatorAsync();
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        var generation = v.Keys.Status.Generation;

        using var extra = MinterKey.CreateEc();
        _h.GitLab.AddJwksEntry(extra.PublicJwkJson());
        Assert.True(await v.Keys.RefreshAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.NotEqual(generation, v.Keys.Status.Generation);

        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(1, v.Cache.Hits);
    }

    [Fact]
    public async Task Cache_entry_dies_at_expiry()
    {
        var v = await _h.ValidatorAsync(o => o.JwksStaleSeconds = 7 * 86400);
        var token = _h.Minter.Mint(); // exp = now + 1h
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        await _h.AdvanceAsync(TimeSpan.FromMinutes(59), v);
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(1, v.Cache.Hits);

        await _h.AdvanceAsync(TimeSpan.FromSeconds(90), v); // past exp, within the 60 s skew
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        await _h.AdvanceAsync(TimeSpan.FromSeconds(31), v);
        Assert.Equal(TokenErrors.TokenExpired, (await _h.ValidateAsync(v, token)).ErrorCode);
        Assert.Equal(2, v.Cache.Hits);
    }

    [Fact]
    public async Task Cache_rechecks_max_age_on_every_hit()
    {
        var v = await _h.ValidatorAsync(o => o.MaxTokenAgeSeconds = 600);
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        await _h.AdvanceAsync(TimeSpan.FromMinutes(10), v);
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        await _h.AdvanceAsync(TimeSpan.FromMinutes(2), v); // 720 s > 600 + 60 skew
        Assert.Equal(TokenErrors.TokenTooOld, (await _h.ValidateAsync(v, token)).ErrorCode);
    }

    [Fact]
    public async Task Cached_token_is_refused_when_keys_are_too_stale()
    {
        var v = await _h.ValidatorAsync(o =>
        {
            o.JwksRefreshSeconds = 60;
            o.JwksStaleSeconds = 600;
        });
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);

        _h.GitLab.Fault = FakeGitLabFault.Down;
        await _h.AdvanceAsync(TimeSpan.FromSeconds(601), v);
        Assert.Equal(TokenErrors.KeysUnavailable, (await _h.ValidateAsync(v, token)).ErrorCode);
    }

    [Fact]
    public async Task Disabled_cache_still_validates()
    {
        var v = await _h.ValidatorAsync(o => o.VerifiedTokenCacheSize = 0);
        var token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(0, v.Cache.Hits);
        Assert.Equal(0, v.Cache.Count);
    }

    [Fact]
    public async Task Cache_is_lru_bounded()
    {
        var v = await _h.ValidatorAsync(o => o.VerifiedTokenCacheSize = 2);
        var a = _h.Minter.Mint();
        var b = _h.Minter.Mint();
        var c = _h.Minter.Mint();
        await _h.ValidateAsync(v, a);
        await _h.ValidateAsync(v, b);
        await _h.ValidateAsync(v, a);          // a is now most recent
        await _h.ValidateAsync(v, c);          // evicts b
        Assert.Equal(2, v.Cache.Count);
        Assert.Equal(1, v.Cache.Evictions);

        var hits = v.Cache.Hits;
        await _h.ValidateAsync(v, a);
        Assert.Equal(hits + 1, v.Cache.Hits);
        await _h.ValidateAsync(v, b);          // miss: was evicted
        Assert.Equal(hits + 1, v.Cache.Hits);
    }

    [Fact]
    public void Unit_cache_checks_deadline_and_key_presence()
    {
        using var key = MinterKey.CreateRsa();
        using var other = MinterKey.CreateRsa();
        var set1 = JwksParser.Parse(Encoding.UTF8.GetBytes(MinterKey.JwksJson(key)), null, null).Set!;
        var set2 = JwksParser.Parse(Encoding.UTF8.GetBytes(MinterKey.JwksJson(key, other)), set1, null).Set!;
        var set3 = JwksParser.Parse(Encoding.UTF8.GetBytes(MinterKey.JwksJson(other)), set2, null).Set!;
        Assert.True(set1.TryGetKey(key.Kid, out var signingKey));

        var cache = new VerifiedTokenCache(100);
        var hash = TokenHash.Compute("a.b.c"u8);
        var now = DateTimeOffset.UnixEpoch.AddDays(1000);
        var result = TokenResult.Success(ClaimSet.FromValues([]), now.AddHours(1), now, "jti", key.Kid, "iss", "aud", hash.ToShortHex());
        cache.Add(hash, result, signingKey, set1.Generation, now.AddHours(1));

        Assert.True(cache.TryGet(hash, now, set1, out var hit));
        Assert.Same(result, hit);
        Assert.True(cache.TryGet(hash, now, set2, out _));          // key carried over into the new set
        Assert.False(cache.TryGet(hash, now, (GitLabCiAuth.Keys.KeySet?)null, out _));         // no usable keys: no hit (entry kept)
        Assert.Equal(1, cache.Count);
        Assert.False(cache.TryGet(hash, now.AddHours(2), set2, out _)); // past the deadline: dropped
        Assert.Equal(0, cache.Count);

        cache.Add(hash, result, signingKey, set2.Generation, now.AddHours(1));
        Assert.False(cache.TryGet(hash, now, set3, out _));         // key left the set: dropped
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public async Task Cache_is_thread_safe_under_parallel_hits_and_misses()
    {
        var v = await _h.ValidatorAsync(o => o.VerifiedTokenCacheSize = 300);
        var tokens = Enumerable.Range(0, 50).Select(_ => Encoding.ASCII.GetBytes("Bearer " + _h.Minter.Mint())).ToArray();
        var now = _h.Now;

        await Parallel.ForEachAsync(Enumerable.Range(0, 4000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            var r = await v.ValidateAsync(tokens[i % tokens.Length], now);
            if (!r.IsValid) throw new InvalidOperationException(r.ToString());
        });

        Assert.Equal(4000, v.Cache.Hits + v.Cache.Misses);
        Assert.True(v.Cache.Hits >= 4000 - 50 * 8);
        Assert.Equal(50, v.Cache.Count);
    }
}
