using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tests.Tokens;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Keys;

/// <summary>Key fetching behaviour seen through the validator, against the fake GitLab and a manual clock.</summary>
public sealed class KeyFetchingTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30); // safety net only, never a threshold

    private readonly ValidatorHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Start_uses_discovery_then_the_discovered_jwks_uri()
    {
        var v = await _h.ValidatorAsync();
        Assert.Equal(1, _h.GitLab.DiscoveryRequests);
        Assert.Equal(1, _h.GitLab.KeysRequests);
        var status = v.Keys.Status;
        Assert.True(status.Usable);
        Assert.Equal(2, status.KeyCount); // user OIDC key + CI key
        Assert.Contains(_h.GitLab.CiKey.Kid, status.Kids);
        Assert.Contains(_h.GitLab.UserOidcKey.Kid, status.Kids);
    }

    [Fact]
    public async Task Explicit_jwks_uri_skips_discovery()
    {
        var v = await _h.ValidatorAsync(o => o.JwksUri = _h.GitLab.JwksUrl);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
        Assert.Equal(0, _h.GitLab.DiscoveryRequests);
        Assert.Equal(1, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task First_requests_wait_for_the_initial_fetch()
    {
        _h.GitLab.Slow(TimeSpan.FromMilliseconds(300));
        // a fetch bound far above the slowness: this test is about sharing the fetch, not about its bound
        // (on a loaded machine discovery + keys at 300 ms each came close to the 2 s default)
        var v = await _h.ValidatorAsync(o => o.JwksFetchTimeoutMs = 20_000, waitForKeys: false);
        var token = _h.Minter.Mint();

        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => _h.ValidateAsync(v, token).AsTask()));

        Assert.All(results, r => Assert.True(r.IsValid, r.ToString()));
        Assert.Equal(1, _h.GitLab.KeysRequests); // everyone shared the one initial fetch
    }

    [Fact]
    public async Task Rotation_unknown_kid_triggers_one_refetch_then_succeeds()
    {
        var v = await _h.ValidatorAsync();
        var oldToken = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, oldToken)).IsValid);
        _h.Time.AdvanceSeconds(31); // past the cooldown since the initial fetch

        _h.GitLab.Rotate();
        var newToken = _h.Minter.Mint();
        var r = await _h.ValidateAsync(v, newToken);

        Assert.True(r.IsValid, r.ToString());
        Assert.Equal(_h.GitLab.CiKey.Kid, r.Kid);
        Assert.Equal(2, _h.GitLab.KeysRequests);
        // The old key is gone (no overlap, like GitLab): its tokens stop verifying, even the cached one.
        Assert.Equal(TokenErrors.UnknownKey, (await _h.ValidateAsync(v, oldToken)).ErrorCode);
        Assert.Equal(2, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Rotation_within_the_cooldown_waits_for_the_cooldown()
    {
        var v = await _h.ValidatorAsync();
        // The fetch at start does not count against the unknown-kid cooldown: a rotation right after it is picked up.
        _h.GitLab.Rotate();
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
        Assert.Equal(2, _h.GitLab.KeysRequests);

        // A second rotation within the cooldown of that unknown-kid refetch: no refetch yet, and the kid is not "remembered" as bad.
        _h.GitLab.Rotate();
        var token = _h.Minter.Mint();
        Assert.Equal(TokenErrors.UnknownKey, (await _h.ValidateAsync(v, token)).ErrorCode);
        Assert.Equal(2, _h.GitLab.KeysRequests);

        _h.Time.AdvanceSeconds(30);
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
        Assert.Equal(3, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Concurrent_unknown_kid_requests_share_one_fetch()
    {
        var v = await _h.ValidatorAsync();
        _h.Time.AdvanceSeconds(31);
        _h.GitLab.Rotate();
        _h.GitLab.Slow(TimeSpan.FromMilliseconds(300)); // keep the fetch in flight while the others arrive
        var tokens = Enumerable.Range(0, 20).Select(_ => _h.Minter.Mint()).ToArray();

        var results = await Task.WhenAll(tokens.Select(t => _h.ValidateAsync(v, t).AsTask()));

        Assert.All(results, r => Assert.True(r.IsValid, r.ToString()));
        Assert.Equal(2, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Flood_of_random_kids_causes_at_most_one_fetch_per_cooldown_window()
    {
        var v = await _h.ValidatorAsync(o => o.JwksRefetchCooldownSeconds = 30);
        Assert.Equal(1, _h.GitLab.KeysRequests);

        async Task FloodAsync(int n)
        {
            var tokens = Enumerable.Range(0, n).Select(_ => _h.Minter.WithRandomKid()).ToArray();
            var parallel = await Task.WhenAll(tokens.Take(n / 2).Select(t => _h.ValidateAsync(v, t).AsTask()));
            Assert.All(parallel, r => Assert.Equal(TokenErrors.UnknownKey, r.ErrorCode));
            foreach (var t in tokens.Skip(n / 2))
                Assert.Equal(TokenErrors.UnknownKey, (await _h.ValidateAsync(v, t)).ErrorCode);
        }

        // (the fetch at start does not open a window: only unknown-kid refetches do)
        await FloodAsync(40);                       // first window (t0): exactly one fetch
        Assert.Equal(2, _h.GitLab.KeysRequests);

        _h.Time.AdvanceSeconds(10);
        await FloodAsync(40);                       // same window: none
        Assert.Equal(2, _h.GitLab.KeysRequests);

        _h.Time.AdvanceSeconds(21);
        await FloodAsync(40);                       // t0 + 31, new window: exactly one fetch
        Assert.Equal(3, _h.GitLab.KeysRequests);

        _h.Time.AdvanceSeconds(10);
        await FloodAsync(40);                       // same window: none
        Assert.Equal(3, _h.GitLab.KeysRequests);

        _h.Time.AdvanceSeconds(25);
        await FloodAsync(40);                       // next window: one more
        Assert.Equal(4, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task A_kid_still_unknown_after_a_fetch_never_triggers_another()
    {
        var v = await _h.ValidatorAsync();
        var bogus = _h.Minter.WithRandomKid();
        _h.Time.AdvanceSeconds(31);
        Assert.Equal(TokenErrors.UnknownKey, (await _h.ValidateAsync(v, bogus)).ErrorCode);
        Assert.Equal(2, _h.GitLab.KeysRequests);

        for (var i = 0; i < 5; i++)
        {
            _h.Time.AdvanceSeconds(31);
            Assert.Equal(TokenErrors.UnknownKey, (await _h.ValidateAsync(v, bogus)).ErrorCode);
        }
        Assert.Equal(2, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Background_refresh_runs_every_refresh_interval()
    {
        var v = await _h.ValidatorAsync(o => o.JwksRefreshSeconds = 600);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(599), v);
        Assert.Equal(1, _h.GitLab.KeysRequests);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(1), v);
        Assert.Equal(2, _h.GitLab.KeysRequests);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        Assert.Equal(3, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Background_refresh_picks_up_a_rotation_without_any_unknown_kid()
    {
        var v = await _h.ValidatorAsync(o => o.JwksRefreshSeconds = 600);
        _h.GitLab.Rotate();
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        var before = _h.GitLab.KeysRequests;
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
        Assert.Equal(before, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Issuer_down_at_start_gives_keys_unavailable_then_recovers()
    {
        _h.GitLab.Fault = FakeGitLabFault.Down;
        var v = await _h.ValidatorAsync();
        var token = _h.Minter.Mint();

        var r = await _h.ValidateAsync(v, token);
        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.Equal(503, r.HttpStatus);
        Assert.InRange(r.RetryAfterSeconds, 1, 30);
        Assert.False(v.Keys.Status.Usable);
        Assert.NotNull(v.Keys.Status.LastError);
        Assert.Single(_h.Logs, l => l.StartsWith("Error", StringComparison.Ordinal) && l.Contains($"keys for {_h.GitLab.DiscoveryUrl} unavailable: "));

        // Within the cooldown a request does not hammer the issuer.
        var connections = _h.GitLab.Connections;
        Assert.Equal(TokenErrors.KeysUnavailable, (await _h.ValidateAsync(v, token)).ErrorCode);
        Assert.Equal(connections, _h.GitLab.Connections);

        _h.GitLab.Fault = FakeGitLabFault.None;
        await _h.AdvanceAsync(TimeSpan.FromSeconds(30), v); // the retry timer (cooldown backoff) fires
        token = _h.Minter.Mint();
        Assert.True((await _h.ValidateAsync(v, token)).IsValid);
    }

    [Fact]
    public async Task Issuer_down_at_start_recovers_on_request_after_the_cooldown()
    {
        _h.GitLab.Fault = FakeGitLabFault.Status500;
        var v = await _h.ValidatorAsync(o => o.JwksRefetchCooldownSeconds = 5);
        Assert.Equal(TokenErrors.KeysUnavailable, (await _h.ValidateAsync(v, _h.Minter.Mint())).ErrorCode);
        Assert.Contains("HTTP 500", v.Keys.Status.LastError);

        _h.GitLab.Fault = FakeGitLabFault.None;
        // Move the clock without running the fetch the timer starts, and validate at once: the request joins
        // or starts the fetch and waits for it.
        _h.Time.AdvanceSeconds(5);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
    }

    [Fact]
    public async Task Stale_keys_are_served_while_the_issuer_is_down_and_refused_after_the_stale_limit()
    {
        var v = await _h.ValidatorAsync(o =>
        {
            o.JwksRefreshSeconds = 600;
            o.JwksStaleSeconds = 3600;
        });
        _h.GitLab.Fault = FakeGitLabFault.Down;

        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v); // scheduled refresh fails
        Assert.True(v.Keys.Status.FetchFailures >= 1);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid); // last good set still used
        Assert.Contains(_h.Logs, l => l.Contains("serving the last good key set"));

        await _h.AdvanceAsync(TimeSpan.FromSeconds(2999), v); // 3599 s after the good fetch
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);

        await _h.AdvanceAsync(TimeSpan.FromSeconds(2), v);    // 3601 s: too stale
        var r = await _h.ValidateAsync(v, _h.Minter.Mint());
        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.False(v.Keys.Status.Usable);

        // And back when the issuer is.
        _h.GitLab.Fault = FakeGitLabFault.None;
        await v.Keys.RefreshAsync().WaitAsync(Wait);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
    }

    [Fact]
    public async Task Discovery_pointing_to_another_host_is_refused()
    {
        _h.GitLab.Fault = FakeGitLabFault.DiscoveryPointsElsewhere; // jwks_uri on "localhost" (which would resolve here)
        var v = await _h.ValidatorAsync();

        var r = await _h.ValidateAsync(v, _h.Minter.Mint());

        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.Equal(1, _h.GitLab.DiscoveryRequests);
        Assert.Equal(0, _h.GitLab.KeysRequests); // never followed
        Assert.Contains("not on the issuer's host", v.Keys.Status.LastError);
    }

    [Theory]
    [InlineData(FakeGitLabFault.Garbage, "not valid JSON", KeyFetchCause.InvalidJson)]
    [InlineData(FakeGitLabFault.HugeBody, "exceeds", KeyFetchCause.BodyTooLarge)]
    [InlineData(FakeGitLabFault.Status500, "HTTP 500", KeyFetchCause.HttpStatus)]
    [InlineData(FakeGitLabFault.Down, "connection", KeyFetchCause.Connection)]
    public async Task Broken_key_endpoint_gives_keys_unavailable(FakeGitLabFault fault, string error, KeyFetchCause cause)
    {
        _h.GitLab.SetFault(fault, FakeGitLab.KeysPath);
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Mint());
        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.Contains(error, v.Keys.Status.LastError);
        Assert.True(cause == r.KeysFailure!.Cause, $"{r.KeysFailure.Cause}: {r.KeysFailure.Message}");
        Assert.Equal(v.Keys.Status.LastError, r.KeysFailure.Message);
        Assert.Equal(1, v.Keys.Status.FailuresByCause[(int)cause]);
    }

    [Fact]
    public async Task Garbage_after_a_good_fetch_keeps_the_last_good_set()
    {
        var v = await _h.ValidatorAsync(o => o.JwksRefreshSeconds = 600);
        _h.GitLab.Fault = FakeGitLabFault.Garbage;
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        Assert.Equal(1, v.Keys.Status.FetchFailures);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
    }

    [Fact]
    public async Task Fetch_timeout_bounds_a_hanging_issuer()
    {
        _h.GitLab.Fault = FakeGitLabFault.Hang;
        var v = await _h.ValidatorAsync(o => o.JwksFetchTimeoutMs = 200, waitForKeys: false);

        var r = await _h.ValidateAsync(v, _h.Minter.Mint()).AsTask().WaitAsync(Wait);

        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.Contains("timed out", v.Keys.Status.LastError);
    }

    [Fact]
    public async Task Slow_issuer_within_the_timeout_is_fine()
    {
        _h.GitLab.Slow(TimeSpan.FromMilliseconds(200));
        var v = await _h.ValidatorAsync(o => o.JwksFetchTimeoutMs = 10_000);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
    }

    [Fact]
    public async Task Instances_with_the_same_source_share_it_and_an_unused_source_stops()
    {
        var v1 = new GitLabTokenValidator(_h.Options(), _h.Store, _h.Time);
        var v2 = new GitLabTokenValidator(_h.Options(o => o.Audiences = ["https://other.example"]), _h.Store, _h.Time);
        await Task.WhenAll(v1.InitialKeyFetch, v2.InitialKeyFetch).WaitAsync(Wait);

        Assert.Equal(1, _h.Store.SourceCount);
        Assert.Equal(1, _h.GitLab.DiscoveryRequests);
        Assert.Equal(2, v1.Keys.Status.Leases);
        Assert.True((await v1.ValidateAsync("Bearer " + _h.Minter.Mint(), _h.Now)).IsValid);

        v1.Dispose();
        Assert.Equal(1, _h.Store.SourceCount);
        Assert.True((await v2.ValidateAsync("Bearer " + new TokenMinter(_h.GitLab, "https://other.example", _h.Time).Mint(), _h.Now)).IsValid);

        v2.Dispose();
        Assert.Equal(0, _h.Store.SourceCount);
        Assert.Equal(0, _h.Time.ActiveTimers);
        var requests = _h.GitLab.KeysRequests;
        _h.Time.Advance(TimeSpan.FromHours(5));
        await Task.Delay(50); // nothing should start; give a stray fetch a chance to show up
        Assert.Equal(requests, _h.GitLab.KeysRequests);
    }

    [Fact]
    public async Task Different_fetch_settings_make_separate_sources()
    {
        await _h.ValidatorAsync();
        await _h.ValidatorAsync(o => o.JwksFetchTimeoutMs = 5000);
        Assert.Equal(2, _h.Store.SourceCount);
    }

    [Fact]
    public async Task Private_ca_bundle_is_trusted_for_https_key_endpoints()
    {
        using var h = new ValidatorHarness(new FakeGitLabOptions { UseTls = true });
        var caFile = Path.Combine(Path.GetTempPath(), $"gitlab-ci-auth-ca-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(caFile, h.GitLab.CaCertificatePem);
        try
        {
            var untrusted = await h.ValidatorAsync(o => o.AllowInsecureHttp = false);
            Assert.Equal(TokenErrors.KeysUnavailable, (await h.ValidateAsync(untrusted, h.Minter.Mint())).ErrorCode);

            var trusted = await h.ValidatorAsync(o =>
            {
                o.AllowInsecureHttp = false;
                o.JwksCaFile = caFile;
            });
            Assert.True((await h.ValidateAsync(trusted, h.Minter.Mint())).IsValid);
        }
        finally
        {
            File.Delete(caFile);
        }
    }

    [Fact]
    public async Task Unreadable_ca_file_is_an_options_error()
    {
        var e = Assert.Throws<TokenOptionsException>(() =>
            new GitLabTokenValidator(_h.Options(o => o.JwksCaFile = "/nonexistent/ca.pem"), _h.Store, _h.Time));
        Assert.Equal("jwks_ca_file", e.Field);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Http_issuer_is_refused_unless_allowed()
    {
        var e = Assert.Throws<TokenOptionsException>(() =>
            new GitLabTokenValidator(_h.Options(o => o.AllowInsecureHttp = false), _h.Store, _h.Time));
        Assert.Equal("issuer", e.Field);
        await Task.CompletedTask;
    }
}
