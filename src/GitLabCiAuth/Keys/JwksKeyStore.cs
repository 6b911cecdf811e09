namespace GitLabCiAuth.Keys;

/// <summary>
/// The process-wide registry of key sources. Validator instances (one per route/plugin config) acquire a
/// ref-counted <see cref="KeySourceLease"/>; instances with the same key source share one fetcher, one key set
/// and one refresh timer. When the last lease of a source is disposed, the source stops refreshing and is removed.
/// </summary>
public sealed class JwksKeyStore : IDisposable
{
    private static readonly Lazy<JwksKeyStore> s_shared = new(() => new JwksKeyStore());

    private readonly Lock _lock = new();
    private readonly Dictionary<string, KeySource> _sources = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <param name="timeProvider">Clock for refresh timers, cooldowns and staleness (tests inject a manual one).
    /// Fetch timeouts always use the wall clock because they bound real I/O.</param>
    /// <param name="log">Optional log sink.</param>
    public JwksKeyStore(TimeProvider? timeProvider = null, KeyLog? log = null)
    {
        TimeProvider = timeProvider ?? TimeProvider.System;
        Log = log;
    }

    /// <summary>The process-wide store used by validators that are not given one.</summary>
    public static JwksKeyStore Shared => s_shared.Value;

    public TimeProvider TimeProvider { get; }

    /// <summary>Log sink (may be set later; read at each use).</summary>
    public KeyLog? Log { get; set; }

    /// <summary>Number of live (leased) sources.</summary>
    public int SourceCount
    {
        get { lock (_lock) return _sources.Count; }
    }

    /// <summary>
    /// Leases the source for <paramref name="settings"/>, creating and starting it (initial fetch + refresh timer)
    /// when no instance uses it yet. Throws <see cref="TokenOptionsException"/> for a static JWKS without
    /// usable keys or an unreadable CA file.
    /// </summary>
    public KeySourceLease Acquire(KeySourceSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var key = settings.RegistryKey;
        KeySource? created = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_sources.TryGetValue(key, out var source))
            {
                source = new KeySource(settings, TimeProvider, () => Log);
                _sources.Add(key, source);
                created = source;
            }
            source.Leases++;
            if (created is not null) created.Start();
            return new KeySourceLease(this, source);
        }
    }

    public IReadOnlyList<KeySourceStatus> GetStatus()
    {
        KeySource[] sources;
        lock (_lock) sources = _sources.Values.ToArray();
        return sources.Select(s => s.GetStatus()).ToArray();
    }

    internal void Release(KeySource source)
    {
        var stop = false;
        lock (_lock)
        {
            if (--source.Leases == 0)
            {
                _sources.Remove(source.Settings.RegistryKey);
                stop = true;
            }
        }
        if (stop)
        {
            source.Stop();
            Log?.Invoke(KeyLogLevel.Debug, $"JWKS {source.Settings.SourceId}: no instance uses this source any more; stopped");
        }
    }

    public void Dispose()
    {
        KeySource[] sources;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            sources = _sources.Values.ToArray();
            _sources.Clear();
        }
        foreach (var s in sources) s.Stop();
    }
}

/// <summary>
/// A validator instance's handle on a shared key source. Dispose it when the instance goes away; the
/// source stops refreshing once no lease remains.
/// </summary>
public sealed class KeySourceLease : IDisposable
{
    private readonly JwksKeyStore _store;
    private KeySource? _source;
    private readonly KeySource _sourceForReads;

    internal KeySourceLease(JwksKeyStore store, KeySource source)
    {
        _store = store;
        _source = source;
        _sourceForReads = source;
    }

    public string SourceId => _sourceForReads.Settings.SourceId;

    public KeySourceSettings Settings => _sourceForReads.Settings;

    /// <summary>Completes when the source's first fetch finished (success or failure).</summary>
    public Task InitialFetch => _sourceForReads.FirstFetch;

    /// <summary>The usable key set (fetched and not older than the stale limit) at the store clock's now, or null. Allocation-free.</summary>
    public KeySet? GetUsableKeys() => _sourceForReads.GetUsable();

    /// <summary>Looks up a kid: may wait for an in-flight fetch, or start an unknown-kid refetch (cooldown-limited).</summary>
    public ValueTask<KeyResolution> ResolveAsync(string kid, CancellationToken cancellationToken = default) =>
        _sourceForReads.ResolveAsync(kid, cancellationToken);

    /// <summary>Returns usable keys, waiting for / starting (cooldown permitting) a fetch when there are none.</summary>
    public ValueTask<KeySet?> EnsureUsableAsync(CancellationToken cancellationToken = default) =>
        _sourceForReads.EnsureUsableAsync(cancellationToken);

    /// <summary>Forces a fetch now (ignores the cooldown) or joins the one in flight; true on success.</summary>
    public Task<bool> RefreshAsync() => _sourceForReads.RefreshAsync();

    /// <summary>Completes when no fetch is in flight.</summary>
    public Task WhenIdleAsync() => _sourceForReads.WhenIdleAsync();

    public int RetryAfterSeconds() => _sourceForReads.RetryAfterSeconds();

    public KeySourceStatus Status => _sourceForReads.GetStatus();

    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _source, null);
        if (s is not null) _store.Release(s);
    }
}
