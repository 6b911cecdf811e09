using System.Collections.Concurrent;
using System.Security.Cryptography;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Server;

/// <summary>One plugin instance: an id Kong caches per worker and plugin entity, bound to a handler.</summary>
public sealed class PluginInstance
{
    internal PluginInstance(int id, SharedHandler handler, long startedAt)
    {
        Id = id;
        Shared = handler;
        StartedAt = startedAt;
        Touch();
    }

    public int Id { get; }
    public long StartedAt { get; }
    internal SharedHandler Shared { get; }
    public IPluginHandler Handler => Shared.Handler;
    internal long LastUsedTicks;
    internal int InFlight;

    public void Touch() => Volatile.Write(ref LastUsedTicks, Environment.TickCount64);
}

/// <summary>A handler shared by every instance whose config is the same (Kong starts one per worker and entity).</summary>
internal sealed class SharedHandler(string key, IPluginHandler handler)
{
    public string Key { get; } = key;
    public IPluginHandler Handler { get; } = handler;
    public int RefCount;
}

/// <summary>
/// The live instances. Ids are random positive int32s, never handed out twice by this process (and,
/// being random, not repeated by a restarted one: Kong#8370). Instances with the same canonical config
/// share one handler (compiled policy, caches). Only really idle instances expire.
/// </summary>
public sealed class InstanceRegistry : IDisposable
{
    private readonly IKongPlugin _plugin;
    private readonly ServerLog _log;
    private readonly TimeSpan _idleTimeout;
    private readonly ConcurrentDictionary<int, PluginInstance> _instances = new();
    private readonly Dictionary<string, SharedHandler> _handlers = new(StringComparer.Ordinal);
    private readonly HashSet<int> _issued = [];
    private readonly object _lock = new();
    private readonly Timer? _sweeper;

    public InstanceRegistry(IKongPlugin plugin, ServerLog log, TimeSpan idleTimeout, bool sweep = true)
    {
        _plugin = plugin;
        _log = log;
        _idleTimeout = idleTimeout;
        if (sweep && idleTimeout > TimeSpan.Zero)
        {
            var period = TimeSpan.FromTicks(Math.Clamp(idleTimeout.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
            _sweeper = new Timer(_ => ExpireIdle(), null, period, period);
        }
    }

    public int Count => _instances.Count;
    public int HandlerCount { get { lock (_lock) return _handlers.Count; } }

    public bool TryGet(int id, out PluginInstance instance) => _instances.TryGetValue(id, out instance!);

    /// <summary>Starts an instance for Kong's config JSON. Raises <see cref="ConfigException"/> for a bad config.</summary>
    public PluginInstance Start(ReadOnlySpan<byte> configJson)
    {
        var canonical = _plugin.Canonicalize(configJson);
        string key = Convert.ToBase64String(SHA256.HashData(canonical));
        SharedHandler? shared;
        lock (_lock) _handlers.TryGetValue(key, out shared);
        if (shared is null)
        {
            var handler = _plugin.CreateHandler(configJson); // outside the lock: may be slow
            lock (_lock)
            {
                if (!_handlers.TryGetValue(key, out shared))
                    _handlers[key] = shared = new SharedHandler(key, handler);
                else
                    handler.Dispose();
            }
        }
        lock (_lock)
        {
            shared.RefCount++;
            int id = NewId();
            var inst = new PluginInstance(id, shared, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            _instances[id] = inst;
            return inst;
        }
    }

    /// <summary>Closes an instance; false when the id is unknown.</summary>
    public bool Close(int id)
    {
        if (!_instances.TryRemove(id, out var inst)) return false;
        Release(inst);
        return true;
    }

    /// <summary>Drops instances idle longer than the timeout and with no event running.</summary>
    public int ExpireIdle()
    {
        long now = Environment.TickCount64;
        int n = 0;
        foreach (var (id, inst) in _instances)
        {
            if (Volatile.Read(ref inst.InFlight) > 0) continue;
            if (now - Volatile.Read(ref inst.LastUsedTicks) < _idleTimeout.TotalMilliseconds) continue;
            if (_instances.TryRemove(id, out _))
            {
                Release(inst);
                n++;
                _log.Info($"instance {id} expired after {_idleTimeout.TotalSeconds:0} s idle");
            }
        }
        return n;
    }

    private void Release(PluginInstance inst)
    {
        IPluginHandler? dispose = null;
        lock (_lock)
        {
            if (--inst.Shared.RefCount == 0)
            {
                _handlers.Remove(inst.Shared.Key);
                dispose = inst.Shared.Handler;
            }
        }
        try { dispose?.Dispose(); }
        catch (Exception e) { _log.Warn($"disposing a handler failed: {e.Message}"); }
    }

    private int NewId()
    {
        while (true)
        {
            int id = RandomNumberGenerator.GetInt32(1, int.MaxValue);
            if (_issued.Add(id)) return id;
        }
    }

    public void Dispose()
    {
        _sweeper?.Dispose();
        foreach (var id in _instances.Keys) Close(id);
    }
}
