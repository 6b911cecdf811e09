using System.Text;

namespace GitLabCiAuth.Keys;

public enum KeyResolutionStatus
{
    Found,
    /// <summary>The kid is not in the (usable) key set, after the allowed refetch if any.</summary>
    UnknownKey,
    /// <summary>No key set was ever fetched, or the last good one is older than the stale limit.</summary>
    KeysUnavailable,
}

/// <summary>
/// Result of looking a kid up in a key source. For <see cref="KeyResolutionStatus.KeysUnavailable"/>: why
/// (<see cref="Failure"/>), and whether this is the first such answer of the source within its refetch cooldown
/// (<see cref="Report"/>: the one to write to Kong's error log).
/// </summary>
public readonly record struct KeyResolution(KeyResolutionStatus Status, SigningKey? Key, KeySet? Set, int RetryAfterSeconds,
    KeyFetchFailure? Failure = null, bool Report = false);

/// <summary>A point-in-time view of a key source, for health checks and metrics.</summary>
public sealed record KeySourceStatus(
    string SourceId,
    KeySourceKind Kind,
    int KeyCount,
    IReadOnlyList<string> Kids,
    long Generation,
    DateTimeOffset? LastSuccessAt,
    DateTimeOffset? LastAttemptAt,
    long FetchAttempts,
    long FetchFailures,
    string? LastError,
    bool Usable,
    int Leases)
{
    /// <summary>The last failed fetch (cleared by a good one).</summary>
    public KeyFetchFailure? LastFailure { get; init; }

    /// <summary>Failed fetches since the source started, indexed by <see cref="KeyFetchCause"/>.</summary>
    public IReadOnlyList<long> FailuresByCause { get; init; } = new long[KeyFetchCauses.All.Count];
}

/// <summary>
/// One key source (JWKS URL, discovery URL or static JWKS) shared by all validator instances that use it.
/// Fetch state machine:
/// <list type="bullet">
/// <item>single flight: at most one fetch in flight; concurrent waiters share it;</item>
/// <item>fetched at start; re-fetched in the background every refresh interval (after a failure: backoff from
///   the cooldown doubling up to the refresh interval);</item>
/// <item>an unknown kid triggers a refetch only if no unknown-kid refetch started within the cooldown; a kid still unknown after
///   a successful fetch started for it is remembered and never triggers another one (until the set changes);</item>
/// <item>on failure the last good set is served until the stale limit after its fetch; then "keys unavailable".</item>
/// </list>
/// Failures are logged once per state change, at error: when the source goes bad (or the cause or the usability of
/// the last good set changes), with the cause and the URL; a notice when it recovers. Retries that fail the same
/// way are logged at debug only.
/// </summary>
internal sealed class KeySource
{
    private const int MaxRememberedUnknownKids = 4096;

    private sealed record Snapshot(KeySet Set, DateTimeOffset FetchedAt);

    private readonly TimeProvider _time;
    private readonly Func<KeyLog?> _log;
    private readonly JwksHttpFetcher? _http;
    private readonly Lock _lock = new();
    private readonly HashSet<string> _unknownKids = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _firstFetch = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private volatile Snapshot? _snapshot;
    private TaskCompletionSource<bool>? _inflight;
    private DateTimeOffset? _lastAttemptStart;
    private DateTimeOffset? _lastKidRefetchStart;
    private DateTimeOffset? _lastSuccess;
    private string? _lastError;
    private KeyFetchFailure? _lastFailure;
    private readonly long[] _failuresByCause = new long[KeyFetchCauses.All.Count];
    private (KeyFetchCause Cause, bool Usable)? _loggedFailure; // the failing state last logged; null while fine
    private DateTimeOffset? _failingSince;
    private DateTimeOffset? _lastUnavailableReport;
    private long _attempts, _failures;
    private int _consecutiveFailures;
    private ITimer? _timer;
    private bool _stopped;

    internal int Leases; // guarded by the store's lock

    public KeySource(KeySourceSettings settings, TimeProvider time, Func<KeyLog?> log)
    {
        Settings = settings;
        _time = time;
        _log = log;
        if (settings.Kind == KeySourceKind.Static)
        {
            var parsed = JwksParser.Parse(Encoding.UTF8.GetBytes(settings.StaticJwks ?? ""), null, log());
            if (parsed.Set is null) throw new TokenOptionsException("static_jwks: " + parsed.Error);
            _snapshot = new Snapshot(parsed.Set, time.GetUtcNow());
            _lastSuccess = _snapshot.FetchedAt;
            _firstFetch.TrySetResult();
        }
        else
        {
            _http = new JwksHttpFetcher(settings);
        }
    }

    public KeySourceSettings Settings { get; }

    public bool IsStatic => Settings.Kind == KeySourceKind.Static;

    /// <summary>Completes when the first fetch finished (successfully or not).</summary>
    public Task FirstFetch => _firstFetch.Task;

    /// <summary>Starts the initial fetch and the refresh timer (no-op for a static source).</summary>
    public void Start()
    {
        if (IsStatic) return;
        lock (_lock)
        {
            _timer = _time.CreateTimer(static s => ((KeySource)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            StartFetchLocked();
        }
    }

    public void Stop()
    {
        lock (_lock)
        {
            if (_stopped) return;
            _stopped = true;
            _timer?.Dispose();
            _timer = null;
        }
        _http?.Dispose();
        _firstFetch.TrySetResult();
    }

    /// <summary>The current key set if one is usable (fetched, and not older than the stale limit), else null. No allocation.</summary>
    public KeySet? GetUsable(DateTimeOffset now)
    {
        var s = _snapshot;
        if (s is null) return null;
        if (!IsStatic && now - s.FetchedAt > Settings.StaleLimit) return null;
        return s.Set;
    }

    public KeySet? GetUsable() => GetUsable(_time.GetUtcNow());

    /// <summary>Seconds a client should wait before retrying when keys are unavailable.</summary>
    public int RetryAfterSeconds()
    {
        lock (_lock)
        {
            if (_inflight is not null || _lastAttemptStart is null) return 1;
            var left = Settings.RefetchCooldown - (_time.GetUtcNow() - _lastAttemptStart.Value);
            return Math.Clamp((int)Math.Ceiling(left.TotalSeconds), 1, 3600);
        }
    }

    /// <summary>Looks a kid up, waiting for an in-flight fetch or starting one when the rules allow.</summary>
    public async ValueTask<KeyResolution> ResolveAsync(string kid, CancellationToken cancellationToken)
    {
        var set = GetUsable();
        if (set is not null && set.TryGetKey(kid, out var key)) return new(KeyResolutionStatus.Found, key, set, 0);

        Task<bool>? wait;
        var started = false;
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            set = GetUsable(now);
            if (set is not null && set.TryGetKey(kid, out key)) return new(KeyResolutionStatus.Found, key, set, 0);
            if (_inflight is not null) wait = _inflight.Task;                       // join the fetch in flight
            else if (set is not null && _unknownKids.Contains(kid)) wait = null;     // already checked against a fresh set
            else if (!IsStatic && !_stopped && (set is null ? CooldownElapsedLocked(now) : KidRefetchAllowedLocked(now)))
            {
                wait = StartFetchLocked();
                _lastKidRefetchStart = now;
                started = true;
            }
            else wait = null;                                                        // rate-limited (kid not remembered)
        }
        if (wait is null) return Miss(set);

        var ok = await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        set = GetUsable();
        if (set is not null && set.TryGetKey(kid, out key)) return new(KeyResolutionStatus.Found, key, set, 0);
        // Remember the kid as unknown only when the fetch was started for it (a joined fetch may have started
        // before the issuer published the key); until the set changes it then never triggers a fetch again.
        if (ok && started && set is not null)
        {
            lock (_lock)
            {
                if (ReferenceEquals(_snapshot?.Set, set))
                {
                    if (_unknownKids.Count >= MaxRememberedUnknownKids) _unknownKids.Clear();
                    _unknownKids.Add(kid);
                }
            }
        }
        return Miss(set);
    }

    /// <summary>Makes sure usable keys exist, waiting for (or, outside the cooldown, starting) a fetch if not.</summary>
    public async ValueTask<KeySet?> EnsureUsableAsync(CancellationToken cancellationToken)
    {
        var set = GetUsable();
        if (set is not null) return set;
        Task<bool>? wait;
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            set = GetUsable(now);
            if (set is not null) return set;
            wait = _inflight?.Task ?? (!IsStatic && !_stopped && CooldownElapsedLocked(now) ? StartFetchLocked() : null);
        }
        if (wait is null) return null;
        await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        return GetUsable();
    }

    /// <summary>Fetches now (ignoring the cooldown) or joins the fetch in flight; true when it succeeded.</summary>
    public Task<bool> RefreshAsync()
    {
        lock (_lock)
        {
            if (IsStatic || _stopped) return Task.FromResult(IsStatic);
            return _inflight?.Task ?? StartFetchLocked();
        }
    }

    /// <summary>Completes when no fetch is in flight (returns at once when idle).</summary>
    public Task WhenIdleAsync()
    {
        lock (_lock) return _inflight?.Task ?? Task.CompletedTask;
    }

    public KeySourceStatus GetStatus()
    {
        lock (_lock)
        {
            var s = _snapshot;
            return new KeySourceStatus(Settings.SourceId, Settings.Kind, s?.Set.Count ?? 0,
                s is null ? [] : s.Set.Kids.ToArray(), s?.Set.Generation ?? 0,
                _lastSuccess, _lastAttemptStart, _attempts, _failures, _lastError,
                GetUsable(_time.GetUtcNow()) is not null, Leases)
            {
                LastFailure = _lastFailure,
                FailuresByCause = (long[])_failuresByCause.Clone(),
            };
        }
    }

    private KeyResolution Miss(KeySet? set) => set is null ? Unavailable() : new(KeyResolutionStatus.UnknownKey, null, set, 0);

    /// <summary>keys_unavailable, with why; the first one of each refetch cooldown is marked to be reported.</summary>
    private KeyResolution Unavailable()
    {
        int retryAfter = RetryAfterSeconds();
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            var failure = _lastFailure ?? new KeyFetchFailure(Settings.SourceId, KeyFetchCause.Other,
                _stopped ? "the key source is stopped" : "no key set has been fetched yet", now);
            bool report = _lastUnavailableReport is not { } last || now - last >= Settings.RefetchCooldown;
            if (report) _lastUnavailableReport = now;
            return new(KeyResolutionStatus.KeysUnavailable, null, null, retryAfter, failure, report);
        }
    }

    // The cooldown for unknown kids counts only fetches started for an unknown kid: the fetch at start or a
    // scheduled refresh must not delay picking up a rotation (GitLab publishes the new key without overlap).
    private bool KidRefetchAllowedLocked(DateTimeOffset now) =>
        _lastKidRefetchStart is null || now - _lastKidRefetchStart.Value >= Settings.RefetchCooldown;

    private bool CooldownElapsedLocked(DateTimeOffset now) =>
        _lastAttemptStart is null || now - _lastAttemptStart.Value >= Settings.RefetchCooldown;

    private Task<bool> StartFetchLocked()
    {
        var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _inflight = tcs;
        _lastAttemptStart = _time.GetUtcNow();
        _attempts++;
        _ = Task.Run(() => RunFetchAsync(tcs));
        return tcs.Task;
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            if (_stopped || _inflight is not null) return;
            StartFetchLocked();
        }
    }

    private async Task RunFetchAsync(TaskCompletionSource<bool> tcs)
    {
        KeySet? newSet = null;
        string? error = null;
        var cause = KeyFetchCause.Other;
        try
        {
            var bytes = await _http!.FetchAsync().ConfigureAwait(false);
            var parsed = JwksParser.Parse(bytes, _snapshot?.Set, _log());
            newSet = parsed.Set;
            error = parsed.Error;
            cause = parsed.NotJson ? KeyFetchCause.InvalidJson : KeyFetchCause.InvalidKeySet;
        }
        catch (JwksFetchException e)
        {
            error = e.Message;
            cause = e.Cause;
        }
        catch (Exception e)
        {
            error = "unexpected error: " + e.GetType().Name;
        }

        bool ok = newSet is not null;
        bool changed = false;
        TimeSpan next;
        (KeyLogLevel Level, string Line)? state = null; // a change of state, logged once
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (ok && !_stopped)
            {
                changed = !ReferenceEquals(_snapshot?.Set, newSet);
                if (changed) _unknownKids.Clear();
                _snapshot = new Snapshot(newSet!, now);
                _lastSuccess = now;
                if (_loggedFailure is not null)
                    state = (KeyLogLevel.Notice, $"keys for {Settings.SourceId} available again: {newSet!.Count} key(s) after {_consecutiveFailures} failed " +
                        $"fetch(es) since {_failingSince:yyyy-MM-ddTHH:mm:ssZ} (last: {_lastError})");
                _lastError = null;
                _lastFailure = null;
                _loggedFailure = null;
                _failingSince = null;
                _consecutiveFailures = 0;
                next = Settings.RefreshInterval;
            }
            else
            {
                ok = false;
                _failures++;
                _lastError = error ?? "stopped";
                if (!_stopped)
                {
                    _failuresByCause[(int)cause]++;
                    _lastFailure = new KeyFetchFailure(Settings.SourceId, cause, _lastError, now);
                    _failingSince ??= now;
                    bool usable = GetUsable(now) is not null;
                    if (_loggedFailure != (cause, usable))
                    {
                        _loggedFailure = (cause, usable);
                        state = (KeyLogLevel.Error, usable
                            ? $"keys for {Settings.SourceId} could not be refreshed: {_lastError}; serving the last good key set " +
                              $"(fetched {_snapshot!.FetchedAt:yyyy-MM-ddTHH:mm:ssZ}) until it is {Settings.StaleLimit.TotalSeconds:0} s old"
                            : _lastFailure.Describe());
                    }
                }
                _consecutiveFailures++;
                var backoff = Settings.RefetchCooldown * Math.Pow(2, Math.Min(_consecutiveFailures - 1, 20));
                next = backoff < Settings.RefreshInterval ? backoff : Settings.RefreshInterval;
            }
            _inflight = null;
            _timer?.Change(next, Timeout.InfiniteTimeSpan);
        }

        var log = _log();
        if (log is not null)
        {
            if (state is var (level, line)) log(level, line);
            if (ok && changed)
                log(KeyLogLevel.Information, $"JWKS {Settings.SourceId}: loaded {newSet!.Count} key(s), generation {newSet.Generation}: {string.Join(", ", newSet.Kids)}");
            else if (!ok && !_stopped && state is null)
                log(KeyLogLevel.Debug, $"JWKS {Settings.SourceId}: fetch failed again ({error})");
        }
        tcs.TrySetResult(ok);
        _firstFetch.TrySetResult();
    }
}
