using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

/// <summary>
/// One simulated nginx worker: its own keep-alive connection pool, its own RPC counters (ProtoBuf
/// <c>sequence</c>: first call 2, then 3, 4...; MsgPack msgid: 1, 2, 3...) and its own instance cache keyed by
/// plugin entity id. Many events may run concurrently on a worker (each in-flight event checks out its own
/// connection, as nginx requests do).
/// </summary>
public sealed partial class KongWorker
{
    private static readonly byte[] UnexpectedErrorBody = Encoding.UTF8.GetBytes("{\"message\":\"An unexpected error occurred\"}");

    private readonly KongSimulator _sim;
    private readonly ConcurrentStack<KongConnection> _pool = new();
    private readonly Dictionary<string, InstanceEntry> _instances = new(StringComparer.Ordinal);
    private readonly object _instLock = new();
    private long _pbSeq;     // Kong's Rpc.msg_id (pb_rpc): incremented per call, the call carries value + 1
    private long _mpMsgId;   // Kong's Rpc.msg_id (mp_rpc): incremented per call, the call carries the value
    private long _opened;
    private long _heldClaims;
    private double? _serverPid;

    internal KongWorker(KongSimulator sim, int index)
    {
        _sim = sim;
        Index = index;
    }

    private sealed class InstanceEntry
    {
        public int? Id;
        public long Seq;
        public string PluginId = "";
        public TaskCompletionSource? Starting;
    }

    /// <summary>The worker number (<c>ngx.worker.id()</c>).</summary>
    public int Index { get; }
    /// <summary>The simulator this worker belongs to.</summary>
    public KongSimulator Simulator => _sim;
    /// <summary>Idle connections in this worker's keep-alive pool.</summary>
    public int PooledConnections => _pool.Count;
    /// <summary>Connections this worker has opened so far (pool misses).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _opened);
    /// <summary>StartInstance calls that raised without releasing their instance claim (Kong's requests for the entity then wait up to 10 s).</summary>
    public long HeldClaims => Interlocked.Read(ref _heldClaims);
    /// <summary>The <c>RpcCall.sequence</c> the next ProtoBuf call of this worker will carry.</summary>
    public long NextSequence => Interlocked.Read(ref _pbSeq) + 2;
    /// <summary>The msgid the next MsgPack call of this worker will carry.</summary>
    public long NextMsgId => Interlocked.Read(ref _mpMsgId) + 1;

    /// <summary>The instance id this worker has cached for <paramref name="entity"/>, or null.</summary>
    public int? CachedInstanceId(PluginEntity entity)
    {
        lock (_instLock) return _instances.TryGetValue(entity.Id, out var e) ? e.Id : null;
    }

    /// <summary>Drops all cached instances of this worker (Kong's reset_instances_for_plugin). Nothing is closed.</summary>
    public void ResetInstances()
    {
        List<InstanceEntry> dropped;
        lock (_instLock)
        {
            dropped = _instances.Values.ToList();
            _instances.Clear();
        }
        // requests waiting on a start re-check the (now empty) cache, as Kong's 0.1 s polling would
        foreach (var e in dropped) e.Starting?.TrySetResult();
    }

    internal void ClosePool()
    {
        while (_pool.TryPop(out var c)) c.Dispose();
    }

    /// <summary>
    /// Runs one event (one phase of one request) the way this Kong worker would: get or start the instance,
    /// HandleEvent, serve the plugin's PDK calls from <paramref name="request"/> until the end of the event or
    /// <c>kong.response.exit</c>, replay on "closed"/"no plugin instance", and report what happened.
    /// Never throws for protocol or server failures: they are reported in the result, as Kong reports them.
    /// </summary>
    /// <param name="entity">The plugin entity (its config as of now is the conf this request sees).</param>
    /// <param name="phase">access, rewrite, response, log, ... (sent verbatim as the event name).</param>
    /// <param name="request">The request; null for a default GET /.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    public async Task<SimResult> RunAsync(PluginEntity entity, string phase, SimRequest? request = null, CancellationToken cancellationToken = default)
    {
        request ??= new SimRequest();
        var res = new SimResult(phase);
        if (NginxRejects(request) is { } duplicate)
        {
            // nginx answers 400 before Kong (or any plugin) sees the request
            res.Outcome = SimOutcome.RejectedByNginx;
            res.Status = 400;
            res.Error = "client sent duplicate header line: " + duplicate;
            return res;
        }
        var ctx = new PdkContext(_sim, entity, phase, request, res);
        var conf = entity.Current;
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                string? err = _sim.Protocol == KongProtocol.ProtoBuf
                    ? await HandleEventPbAsync(ctx, conf, cancellationToken).ConfigureAwait(false)
                    : await HandleEventMpAsync(ctx, conf, cancellationToken).ConfigureAwait(false);
                if (err is null)
                {
                    res.Outcome = SimOutcome.Completed;
                    res.Status = res.ResponseStatusSet ?? request.ResponseStatus ?? 200;
                    break;
                }
                var lower = err.ToLowerInvariant();
                bool replay = lower.Contains("no plugin instance", StringComparison.Ordinal)
                              || (_sim.Protocol == KongProtocol.ProtoBuf && lower.Contains("closed", StringComparison.Ordinal));
                if (replay)
                {
                    res.KongLog.Add("[warn] " + err);
                    ResetForReplay();
                    if (res.Retries >= _sim.Options.MaxReplays)
                    {
                        Fail(res, request, $"simulator: gave up after {res.Retries} replays (last error: {err})", closed: true);
                        break;
                    }
                    res.Retries++;
                    continue;
                }
                if (_sim.Protocol == KongProtocol.ProtoBuf && _sim.Options.FailClosed)
                {
                    res.KongLog.Add("[error] pluginserver error: " + err);
                    Fail(res, request, "pluginserver error: " + err, closed: true);
                }
                else
                {
                    res.KongLog.Add("[error] " + err);
                    Fail(res, request, err, closed: false);
                }
                break;
            }
        }
        catch (LuaError e)
        {
            res.KongLog.Add("[error] " + e.Message);
            Fail(res, request, e.Message, closed: true);
        }
        catch (ExitSignal)
        {
            var exit = res.Exit!;
            res.Outcome = SimOutcome.Exited;
            res.Status = exit.Status;
            res.Body = exit.Body;
        }
        return res;
    }

    // header lines nginx (1.22+, the one Kong bundles) accepts only once: a second one is answered 400
    private static readonly string[] s_uniqueHeaders =
        ["host", "authorization", "content-length", "content-range", "if-modified-since", "if-unmodified-since", "if-range",
         "transfer-encoding", "expect"];

    private static string? NginxRejects(SimRequest request)
    {
        foreach (var name in s_uniqueHeaders)
            if (request.Headers.GetValues(name).Count > 1) return name;
        return null;
    }

    private static void Fail(SimResult res, SimRequest request, string error, bool closed)
    {
        res.Error = error;
        if (closed && res.Phase != "log")
        {
            res.Outcome = SimOutcome.Failed;
            res.Status = 500;
            res.Body = UnexpectedErrorBody;
        }
        else
        {
            // fail-open, or the log phase (the response has already been sent)
            res.Outcome = SimOutcome.FailedOpen;
            res.Status = res.ResponseStatusSet ?? request.ResponseStatus ?? 200;
        }
    }

    private void ResetForReplay()
    {
        if (_sim.Options.BroadcastResets) _sim.ResetInstances();
        else ResetInstances();
    }

    // ------------------------------------------------------------------ instance cache (Kong's get_instance_id)

    private ValueTask<(int Id, string? Error)> GetInstanceIdAsync(PdkContext ctx, ConfigSnapshot conf, CancellationToken ct)
    {
        lock (_instLock)
        {
            // fast path: an exact match (cached id, same __seq__, same plugin id)
            if (_instances.TryGetValue(ctx.Entity.Id, out var e) && e is { Id: int id } && e.Seq == conf.Seq && e.PluginId == ctx.Entity.Id)
                return new ValueTask<(int, string?)>((id, null));
        }
        return new ValueTask<(int, string?)>(GetOrStartInstanceAsync(ctx, conf, ct));
    }

    private async Task<(int Id, string? Error)> GetOrStartInstanceAsync(PdkContext ctx, ConfigSnapshot conf, CancellationToken ct)
    {
        string key = ctx.Entity.Id;
        long deadline = Stopwatch.GetTimestamp() + (long)(_sim.Options.ClaimTimeout.TotalSeconds * Stopwatch.Frequency);
        InstanceEntry entry;
        int? oldId;
        while (true)
        {
            Task wait;
            lock (_instLock)
            {
                _instances.TryGetValue(key, out var e);
                if (e is not null && e.Id is null && e.Starting is not null)
                {
                    wait = e.Starting.Task;
                }
                else
                {
                    if (e is { Id: int id } && e.Seq == conf.Seq && e.PluginId == key) return (id, null);
                    oldId = e?.Id;
                    if (e is null)
                    {
                        e = new InstanceEntry { Seq = conf.Seq, PluginId = key };
                        _instances[key] = e;
                    }
                    else e.Id = null; // make it evident that we are changing it
                    e.Starting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    entry = e;
                    break;
                }
            }
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (remaining > TimeSpan.Zero)
            {
                using var delayCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var delay = Task.Delay(remaining, delayCts.Token);
                var done = await Task.WhenAny(wait, delay).ConfigureAwait(false);
                delayCts.Cancel();
                if (done == wait) continue;
                ct.ThrowIfCancellationRequested();
            }
            lock (_instLock)
            {
                if (_instances.TryGetValue(key, out var cur) && cur.Id is null) _instances.Remove(key);
            }
            return (0, $"Could not claim instance_id for {ctx.Entity.Name} (key: {key})");
        }

        int newId;
        try
        {
            newId = _sim.Protocol == KongProtocol.ProtoBuf
                ? await StartInstancePbAsync(ctx, conf).ConfigureAwait(false)
                : await StartInstanceMpAsync(ctx, conf).ConfigureAwait(false);
        }
        catch (LuaError e) when (!e.ReleasesClaim)
        {
            // a raise inside Rpc:call (assert on a failed send, on a reply that does not decode): Kong never reaches
            // `running_instances[key] = nil`, so the claim stays; waiters give up after the claim timeout
            Interlocked.Increment(ref _heldClaims);
            throw;
        }
        catch
        {
            lock (_instLock)
            {
                if (_instances.TryGetValue(key, out var cur) && ReferenceEquals(cur, entry)) _instances.Remove(key);
            }
            entry.Starting?.TrySetResult();
            throw;
        }
        lock (_instLock)
        {
            entry.Id = newId;
            entry.Seq = conf.Seq;
            entry.PluginId = key;
        }
        entry.Starting?.TrySetResult();
        if (oldId is int old)
        {
            // close the replaced instance; Kong ignores the result and any returned error
            if (_sim.Protocol == KongProtocol.ProtoBuf) await CloseInstancePbAsync(ctx, old).ConfigureAwait(false);
            else await CloseInstanceMpAsync(ctx, old).ConfigureAwait(false);
        }
        return (newId, null);
    }

    // ------------------------------------------------------------------ connection pool

    private async ValueTask<KongConnection> CheckoutAsync()
    {
        var idle = _sim.Options.PoolIdleTimeout;
        bool nginx = _sim.Options.NginxPool;
        while (_pool.TryPop(out var c))
        {
            if (nginx)
            {
                // nginx takes a cached connection without looking at it; only the watcher drops closed ones
                if (Interlocked.CompareExchange(ref c.PoolState, 0, 1) == 1 && !c.IsBroken && Stopwatch.GetElapsedTime(c.PooledAtTicks) < idle)
                {
                    c.Timeout = _sim.Options.Timeout;
                    return c;
                }
                if (Volatile.Read(ref c.PoolState) != 2) c.Dispose();
                continue;
            }
            if (c.IsReusable() && Stopwatch.GetElapsedTime(c.PooledAtTicks) < idle)
            {
                c.Timeout = _sim.Options.Timeout;
                return c;
            }
            c.Dispose();
        }
        var conn = await KongConnection.ConnectAsync(_sim.SocketPath, _sim.Options.Timeout).ConfigureAwait(false);
        Interlocked.Increment(ref _opened);
        return conn;
    }

    /// <summary>setkeepalive(): back into the pool when the connection is clean, otherwise closed.</summary>
    private void Release(KongConnection c, bool keepAlive)
    {
        if (keepAlive && c.IsReusable() && _pool.Count < _sim.Options.PoolSize)
        {
            c.PooledAtTicks = Stopwatch.GetTimestamp();
            if (_sim.Options.NginxPool)
            {
                Volatile.Write(ref c.PoolState, 1);
                EnsurePoolWatcher();
            }
            _pool.Push(c);
        }
        else c.Dispose();
    }

    private int _watching;

    /// <summary>nginx's keep-alive close handler: a pooled connection that turns readable is closed and leaves the pool.</summary>
    private void EnsurePoolWatcher()
    {
        if (Interlocked.Exchange(ref _watching, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            while (true)
            {
                await Task.Delay(1).ConfigureAwait(false);
                foreach (var c in _pool.ToArray())
                {
                    if (Volatile.Read(ref c.PoolState) == 1 && c.TurnedReadable() && Interlocked.CompareExchange(ref c.PoolState, 2, 1) == 1)
                        c.Dispose();
                }
                if (!_pool.IsEmpty) continue;
                Volatile.Write(ref _watching, 0); // nothing pooled: stop; the next Release starts a watcher again
                if (_pool.IsEmpty || Interlocked.Exchange(ref _watching, 1) == 1) return;
            }
        });
    }

    private readonly struct Usage(KongConnection c)
    {
        private readonly long _frames = c.FramesReceived, _batches = c.ReceiveBatches, _writes = c.WritesSent;

        public void AddTo(SimResult res, KongConnection c)
        {
            res.FramesReceived += (int)(c.FramesReceived - _frames);
            res.ReceiveBatches += (int)(c.ReceiveBatches - _batches);
            res.WritesSent += (int)(c.WritesSent - _writes);
        }
    }
}
