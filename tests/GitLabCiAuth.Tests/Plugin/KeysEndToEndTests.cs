using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

/// <summary>Issue 3, key handling seen through Kong: rotation, kid floods, an issuer that is down, stale keys.</summary>
public sealed class KeysEndToEndTests
{
    public static TheoryData<KongProtocol> Protocols => PluginHarness.Protocols;

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Rotation_at_GitLab_unknown_kid_one_refetch_then_allowed(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol, ownGitLab: true);
        var entity = h.Add();
        var old = h.Minter.Mint();
        await h.AllowedAsync(entity, old);
        Assert.Equal(1, h.GitLab.KeysRequests);
        h.Time.AdvanceSeconds(31); // past any cooldown

        h.GitLab.Rotate(); // GitLab replaces the CI key, no overlap
        var fresh = h.Minter.Mint();
        var r = await h.AllowedAsync(entity, fresh);

        Assert.Equal(2, h.GitLab.KeysRequests);
        Assert.Equal("16234", r.UpstreamHeaders["X-GitLab-Project-Id"]);
        // more tokens of the new key: no more fetches
        await h.AllowedAsync(entity, h.Minter.Mint());
        // the old key left the set: its token (verified and cached before) is refused, without a fetch
        Expect.InvalidToken(await h.RunAsync(entity, old), "unknown_key");
        Assert.Equal(2, h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Flood_of_random_kids_causes_at_most_one_fetch_per_cooldown()
    {
        await using var h = PluginHarness.Start(KongProtocol.ProtoBuf, ownGitLab: true);
        var entity = h.Add(c => c["jwks_refetch_cooldown_seconds"] = 30);
        await h.AllowedAsync(entity, h.Minter.Mint());
        int start = h.GitLab.KeysRequests;
        Assert.Equal(1, start);

        async Task FloodAsync(int n)
        {
            var tokens = Enumerable.Range(0, n).Select(_ => h.Minter.WithRandomKid()).ToArray();
            var parallel = await Task.WhenAll(tokens.Take(n / 2).Select(t => h.RunAsync(entity, t)));
            Assert.All(parallel, r => Expect.InvalidToken(r, "unknown_key"));
            foreach (var t in tokens.Skip(n / 2)) Expect.InvalidToken(await h.RunAsync(entity, t), "unknown_key");
        }

        await FloodAsync(30);                                 // window 1 (t0)
        Assert.InRange(h.GitLab.KeysRequests - start, 0, 1);
        h.Time.AdvanceSeconds(10);
        await FloodAsync(30);                                 // still window 1
        int afterWindow1 = h.GitLab.KeysRequests - start;
        Assert.InRange(afterWindow1, 0, 1);

        h.Time.AdvanceSeconds(21);                            // t0 + 31: a new window
        await FloodAsync(30);
        int afterWindow2 = h.GitLab.KeysRequests - start;
        Assert.InRange(afterWindow2, 1, 2);                   // unknown kids do trigger a refetch, but only one
        h.Time.AdvanceSeconds(10);                            // t0 + 41: inside the second window
        await FloodAsync(30);
        Assert.Equal(afterWindow2, h.GitLab.KeysRequests - start);

        // a genuine token still passes throughout
        await h.AllowedAsync(entity, h.Minter.Mint());
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Issuer_down_at_start_is_503_keys_unavailable_then_recovers(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol, ownGitLab: true);
        h.GitLab.SetFault(FakeGitLabFault.Down);
        var entity = h.Add();

        var r = await h.RunAsync(entity, h.Minter.Mint());
        Expect.Unavailable(r, out var retryAfter);
        Assert.InRange(retryAfter, 1, 30); // at most the refetch cooldown
        Assert.Equal("keys_unavailable", Expect.Str(Expect.Record(r), "code"));
        Assert.Contains("(keys_unavailable)", Expect.Notice(r, "rejected token"));

        // within the cooldown: still 503, and no new connection to the issuer
        int connections = h.GitLab.Connections;
        Expect.Unavailable(await h.RunAsync(entity, h.Minter.Mint()), out _);
        Assert.Equal(connections, h.GitLab.Connections);

        // GitLab comes back; after Retry-After a request gets through
        h.GitLab.SetFault(FakeGitLabFault.None);
        h.Lease(entity);
        await h.AdvanceAsync(TimeSpan.FromSeconds(retryAfter));
        await h.AllowedAsync(entity, h.Minter.Mint());
        Assert.True(h.GitLab.KeysRequests >= 1);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Keys_unavailable_goes_to_Kong_error_log_with_the_cause_and_the_url_once_per_cooldown(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol, ownGitLab: true);
        h.GitLab.SetFault(FakeGitLabFault.Status500);
        var entity = h.Add(c => c["jwks_refetch_cooldown_seconds"] = 30);
        string cause = $"keys for {h.GitLab.DiscoveryUrl} unavailable: discovery document: HTTP 500 from {h.GitLab.DiscoveryUrl}";

        var first = await h.RunAsync(entity, h.Minter.Mint());
        Expect.Unavailable(first, out _);
        var err = Assert.Single(first.Logs, l => l.Level == "err");
        Assert.StartsWith(cause + " (requests get 503 keys_unavailable", err.Message);

        var later = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => h.RunAsync(entity, h.Minter.Mint())));
        foreach (var r in later)
        {
            Expect.Unavailable(r, out _);
            Assert.DoesNotContain(r.Logs, l => l.Level == "err"); // once per cooldown, not per request
        }
        var quiet = later[^1];
        // the server's log: one line for the source going bad, not one per request or per failed retry
        Assert.Equal(["Error: " + cause], h.KeyLogs.Where(l => l.StartsWith("Error", StringComparison.Ordinal)));

        h.Lease(entity);
        await h.AdvanceAsync(TimeSpan.FromSeconds(30)); // a retry fails the same way: no new server line
        var next = await h.RunAsync(entity, h.Minter.Mint());
        Expect.Unavailable(next, out _);
        Assert.StartsWith(cause, Assert.Single(next.Logs, l => l.Level == "err").Message); // the next cooldown: once more
        if (protocol == KongProtocol.ProtoBuf)
            Assert.True(next.ReceiveBatches == quiet.ReceiveBatches, $"{next.ReceiveBatches} vs {quiet.ReceiveBatches}"); // the err line rides in the exit's write
        Assert.Single(h.KeyLogs, l => l.StartsWith("Error", StringComparison.Ordinal));

        h.GitLab.SetFault(FakeGitLabFault.None);
        await h.AdvanceAsync(TimeSpan.FromSeconds(60));
        await h.AllowedAsync(entity, h.Minter.Mint());
        Assert.Single(h.KeyLogs, l => l.StartsWith($"Notice: keys for {h.GitLab.DiscoveryUrl} available again", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Stale_keys_are_served_while_the_issuer_is_down_until_the_stale_limit(KongProtocol protocol)
    {
        await using var h = PluginHarness.Start(protocol, ownGitLab: true);
        var entity = h.Add(c =>
        {
            c["jwks_refresh_seconds"] = 60;
            c["jwks_stale_seconds"] = 120;
            c["jwks_refetch_cooldown_seconds"] = 30;
        });
        await h.AllowedAsync(entity, h.Minter.Mint()); // t0: the first fetch
        var lease = h.Lease(entity);
        h.GitLab.SetFault(FakeGitLabFault.Status500);

        await h.AdvanceAsync(TimeSpan.FromSeconds(61)); // the refresh at t0 + 60 fails
        Assert.True(lease.Status.FetchFailures >= 1, lease.Status.ToString());
        Assert.True(lease.Status.Usable);
        await h.AllowedAsync(entity, h.Minter.Mint()); // the last good set is served
        Assert.Contains(h.KeyLogs, l => l.Contains("serving the last good key set", StringComparison.Ordinal));

        await h.AdvanceAsync(TimeSpan.FromSeconds(61)); // t0 + 122: the set is older than jwks_stale_seconds
        var r = await h.RunAsync(entity, h.Minter.Mint());
        Expect.Unavailable(r, out var retryAfter);

        h.GitLab.SetFault(FakeGitLabFault.None);
        await h.AdvanceAsync(TimeSpan.FromSeconds(retryAfter));
        await h.AllowedAsync(entity, h.Minter.Mint());
    }

    [Fact]
    public async Task Routes_and_workers_with_the_same_issuer_share_one_key_fetch()
    {
        await using var h = PluginHarness.Start(KongProtocol.ProtoBuf, ownGitLab: true, workers: 2);
        var a = h.Add();
        var b = h.Add(c => c["rules"] = PluginHarness.Rules("""[{"name":"platform","claims":{"namespace_path":["acme/platform/**","acme/platform"]}}]"""));
        var token = h.Minter.Mint();

        var results = await Task.WhenAll(
            h.RunAsync(a, token, worker: 0), h.RunAsync(a, token, worker: 1),
            h.RunAsync(b, token, worker: 0), h.RunAsync(b, token, worker: 1));

        Assert.All(results, Expect.Allowed);
        Assert.Equal(1, h.GitLab.KeysRequests);
        Assert.Equal(1, h.GitLab.DiscoveryRequests);
    }
}
