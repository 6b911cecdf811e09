using System.Collections.Concurrent;
using System.Text.Json;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace Resilience.Tests.Infrastructure;

/// <summary>
/// Well-behaved Kong traffic through a <see cref="KongSimulator"/> with exact expectations: a valid token (reused or
/// fresh) is 200 with the token's identity and no token upstream, an expired token is 401 token_expired, no token is
/// 401 token_missing. Every deviation is recorded; nothing is retried or excused.
/// </summary>
public sealed class GoodTraffic
{
    public const string ProjectId = "16234";

    private readonly KongSimulator _kong;
    private readonly PluginEntity _entity;
    private readonly TokenMinter _minter;
    private readonly ConcurrentQueue<string> _failures = new();
    private long _requests, _allowed, _refused, _replays, _failureCount;

    public GoodTraffic(KongSimulator kong, PluginEntity entity, TokenMinter minter)
    {
        _kong = kong;
        _entity = entity;
        _minter = minter;
    }

    public long Requests => Interlocked.Read(ref _requests);
    public long Allowed => Interlocked.Read(ref _allowed);
    public long Refused => Interlocked.Read(ref _refused);
    /// <summary>Events Kong replayed after "closed"/"no plugin instance" (transparent recoveries).</summary>
    public long Replays => Interlocked.Read(ref _replays);
    /// <summary>The first 50 failures.</summary>
    public IReadOnlyCollection<string> Failures => _failures;
    public long FailureCount => Interlocked.Read(ref _failureCount);

    /// <summary>Runs <paramref name="loops"/> concurrent request loops until <paramref name="stop"/> is cancelled and at least
    /// <paramref name="minPerLoop"/> requests per loop were made (bounded by <see cref="Bounds.Scenario"/>).</summary>
    public Task RunAsync(int loops, CancellationToken stop, int minPerLoop = 1, int seed = 1) =>
        Task.WhenAll(Enumerable.Range(0, loops).Select(n => Task.Run(() => LoopAsync(n, stop, minPerLoop, seed)))).WaitAsync(Bounds.Scenario);

    /// <summary>Exactly <paramref name="perLoop"/> requests on each of <paramref name="loops"/> loops.</summary>
    public Task RunCountAsync(int loops, int perLoop, int seed = 1) =>
        Task.WhenAll(Enumerable.Range(0, loops).Select(n => Task.Run(() => LoopAsync(n, CancellationToken.None, perLoop, seed, exact: true)))).WaitAsync(Bounds.Scenario);

    private async Task LoopAsync(int n, CancellationToken stop, int min, int seed, bool exact = false)
    {
        var rng = new Random(seed * 1000 + n);
        string reused = _minter.Mint();
        for (int i = 0; exact ? i < min : (i < min || !stop.IsCancellationRequested); i++)
        {
            int kind = rng.Next(4);
            await OneAsync(n % _kong.WorkerCount, kind, kind == 0 ? reused : null);
        }
    }

    /// <summary>One request of a kind (0 reused valid token, 1 fresh valid token, 2 expired token, 3 no token), checked.</summary>
    public async Task OneAsync(int worker, int kind, string? token = null)
    {
        var (r, problem) = await TryOneAsync(worker, kind, token);
        if (r is not null)
        {
            Interlocked.Increment(ref _requests);
            Interlocked.Add(ref _replays, r.Retries);
        }
        if (problem is not null) Fail($"kind {kind}: {problem}: {r}");
        else if (kind <= 1) Interlocked.Increment(ref _allowed);
        else Interlocked.Increment(ref _refused);
    }

    /// <summary>One request; the result (null when the simulator itself failed) and what was wrong with it (null: exactly right).</summary>
    public async Task<(SimResult? Result, string? Problem)> TryOneAsync(int worker, int kind, string? token = null)
    {
        token ??= kind switch
        {
            0 or 1 => _minter.Mint(),
            2 => _minter.Mint(b => b.IssuedAt(DateTimeOffset.UtcNow.AddHours(-3), TimeSpan.FromHours(1))),
            _ => null,
        };
        var request = new SimRequest { Method = "POST", Path = "/deploy", Host = "api.test" };
        request.Headers["host"] = "api.test";
        request.Headers["x-gitlab-project-id"] = "1"; // a spoofing attempt on every request
        if (token is not null) request.Headers["authorization"] = "Bearer " + token;
        SimResult r;
        try
        {
            r = await _kong.Worker(worker).RunAsync(_entity, "access", request).WaitAsync(Bounds.Hang);
        }
        catch (Exception e)
        {
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
        string? problem = kind switch
        {
            0 or 1 => CheckAllowed(r),
            2 => CheckRefused(r, 401, "token_expired"),
            _ => CheckRefused(r, 401, "token_missing"),
        };
        return (r, problem);
    }

    private void Fail(string what)
    {
        Interlocked.Increment(ref _failureCount);
        if (_failures.Count < 50) _failures.Enqueue(what);
    }

    public static string? CheckAllowed(SimResult r)
    {
        if (r.Outcome != SimOutcome.Completed || r.Status != 200 || r.Exit is not null) return "not allowed";
        if (r.UpstreamHeaders["X-GitLab-Project-Id"] != ProjectId) return "wrong identity header " + r.UpstreamHeaders["X-GitLab-Project-Id"];
        if (r.UpstreamHeaders.GetValues("X-GitLab-Project-Id").Count != 1) return "spoofed identity header kept";
        if (r.UpstreamHeaders["authorization"] is not null) return "token forwarded upstream";
        return null;
    }

    public static string? CheckRefused(SimResult r, int status, string code)
    {
        if (r.Outcome != SimOutcome.Exited || r.Status != status || r.Exit is null) return $"not an exit {status}";
        try
        {
            using var body = JsonDocument.Parse(r.Exit.Body);
            var c = body.RootElement.GetProperty("code").GetString();
            return c == code ? null : $"code {c} instead of {code}";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return "exit body is not {code}: " + r.Exit.BodyText;
        }
    }

    public string Summary() => $"{Requests} requests ({Allowed} allowed, {Refused} refused as expected, {Replays} replays), {FailureCount} failures";

    public void AssertClean()
    {
        Assert.True(FailureCount == 0, Summary() + ":\n" + string.Join("\n", Failures.Take(20)));
        Assert.True(Requests > 0, "no well-behaved request was made");
    }
}
