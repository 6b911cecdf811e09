using System.Net;
using System.Net.Sockets;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tests.Tokens;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Keys;

/// <summary>
/// Why keys are unavailable, told plainly: the cause and the URL on every keys_unavailable result, one log line per
/// change of state of a key source (not per failed retry), a notice when it recovers.
/// </summary>
public sealed class KeyFailureTests : IDisposable
{
    private readonly ValidatorHarness _h = new();

    public void Dispose() => _h.Dispose();

    private string[] Errors => _h.Logs.Where(l => l.StartsWith("Error: ", StringComparison.Ordinal)).ToArray();

    /// <summary>A loopback port nothing listens on.</summary>
    private static int ClosedPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task Connection_refused_is_named_with_the_key_url()
    {
        string url = $"http://127.0.0.1:{ClosedPort()}/oauth/discovery/keys";
        var v = await _h.ValidatorAsync(o => o.JwksUri = url);

        var r = await _h.ValidateAsync(v, _h.Minter.Mint());

        Assert.Equal(TokenErrors.KeysUnavailable, r.ErrorCode);
        Assert.Equal(new KeyFetchFailure(url, KeyFetchCause.ConnectionRefused, "connection refused", r.KeysFailure!.At), r.KeysFailure);
        Assert.Equal($"keys for {url} unavailable: connection refused", r.KeysFailure.Describe());
        Assert.Equal([$"Error: keys for {url} unavailable: connection refused"], Errors);
        Assert.Equal("connection_refused", KeyFetchCause.ConnectionRefused.Label());
    }

    [Fact]
    public async Task An_untrusted_certificate_is_a_tls_error()
    {
        using var h = new ValidatorHarness(new FakeGitLabOptions { UseTls = true });
        var v = await h.ValidatorAsync(o => o.AllowInsecureHttp = false);

        var r = await h.ValidateAsync(v, h.Minter.Mint());

        Assert.Equal(KeyFetchCause.Tls, r.KeysFailure!.Cause);
        Assert.StartsWith("TLS error: ", r.KeysFailure.Message);
        Assert.Contains("certificate", r.KeysFailure.Message);
        Assert.Equal(h.GitLab.DiscoveryUrl, r.KeysFailure.Source);
    }

    [Fact]
    public async Task Discovery_pointing_elsewhere_and_a_timeout_are_their_own_causes()
    {
        _h.GitLab.Fault = FakeGitLabFault.DiscoveryPointsElsewhere;
        var v = await _h.ValidatorAsync();
        var r = await _h.ValidateAsync(v, _h.Minter.Mint());
        Assert.Equal(KeyFetchCause.Discovery, r.KeysFailure!.Cause);
        Assert.Contains("not on the issuer's host", r.KeysFailure.Message);

        _h.GitLab.Fault = FakeGitLabFault.Hang;
        var slow = await _h.ValidatorAsync(o => o.JwksFetchTimeoutMs = 200);
        r = await _h.ValidateAsync(slow, _h.Minter.Mint());
        Assert.Equal(KeyFetchCause.Timeout, r.KeysFailure!.Cause);
        Assert.Equal("timed out after 200 ms", r.KeysFailure.Message);
    }

    [Fact]
    public async Task A_source_failing_the_same_way_logs_once_a_change_of_cause_again_and_the_recovery_at_notice()
    {
        _h.GitLab.Fault = FakeGitLabFault.Status500;
        var v = await _h.ValidatorAsync(o => o.JwksRefetchCooldownSeconds = 5);
        for (int i = 0; i < 4; i++) await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v); // four more failed retries
        Assert.True(v.Keys.Status.FetchFailures >= 5, v.Keys.Status.ToString());
        var first = Assert.Single(Errors);
        Assert.Equal($"Error: keys for {_h.GitLab.DiscoveryUrl} unavailable: discovery document: HTTP 500 from {_h.GitLab.DiscoveryUrl}", first);

        _h.GitLab.SetFault(FakeGitLabFault.Garbage, FakeGitLab.KeysPath); // another cause: a new state
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        Assert.Equal(2, Errors.Length);
        Assert.Contains("unavailable: the key set is not valid JSON", Errors[1]);
        Assert.Equal(KeyFetchCause.InvalidJson, v.Keys.Status.LastFailure!.Cause);
        Assert.True(v.Keys.Status.FailuresByCause[(int)KeyFetchCause.HttpStatus] >= 5);
        Assert.True(v.Keys.Status.FailuresByCause[(int)KeyFetchCause.InvalidJson] >= 1);

        _h.GitLab.SetFault(FakeGitLabFault.None);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(600), v);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).IsValid);
        var notice = Assert.Single(_h.Logs, l => l.StartsWith("Notice: ", StringComparison.Ordinal));
        Assert.StartsWith($"Notice: keys for {_h.GitLab.DiscoveryUrl} available again: 2 key(s) after ", notice);
        Assert.Null(v.Keys.Status.LastFailure);

        // a later refresh failure while the last good set is still fresh enough: logged, as a different state
        _h.GitLab.SetFault(FakeGitLabFault.Status500);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(3600), v);
        Assert.Equal(3, Errors.Length);
        Assert.Contains("could not be refreshed: discovery document: HTTP 500", Errors[2]);
        Assert.Contains("serving the last good key set", Errors[2]);
    }

    [Fact]
    public async Task The_first_keys_unavailable_result_of_each_cooldown_is_the_one_to_report()
    {
        _h.GitLab.Fault = FakeGitLabFault.Status500;
        var v = await _h.ValidatorAsync(o => o.JwksRefetchCooldownSeconds = 30);

        var results = new List<TokenResult>();
        for (int i = 0; i < 5; i++) results.Add(await _h.ValidateAsync(v, _h.Minter.Mint()));
        Assert.All(results, r => Assert.Equal(KeyFetchCause.HttpStatus, r.KeysFailure!.Cause));
        Assert.Equal([true, false, false, false, false], results.Select(r => r.ReportKeysFailure));

        _h.Time.AdvanceSeconds(29);
        Assert.False((await _h.ValidateAsync(v, _h.Minter.Mint())).ReportKeysFailure);
        await _h.AdvanceAsync(TimeSpan.FromSeconds(1), v);
        Assert.True((await _h.ValidateAsync(v, _h.Minter.Mint())).ReportKeysFailure);
        Assert.False((await _h.ValidateAsync(v, _h.Minter.Mint())).ReportKeysFailure);
    }
}
