using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Kong.PluginServer.Plugins;

/// <summary>One plugin instance: an id Kong caches per worker and plugin entity, bound to a handler of one plugin.</summary>
internal sealed class PluginInstance
{
    internal PluginInstance(int id, IKongPlugin plugin, SharedHandler handler, long startedAt, InstanceScope scope)
    {
        Id = id;
        Plugin = plugin;
        Shared = handler;
        StartedAt = startedAt;
        Scope = scope;
        Touch();
    }

    public int Id { get; }

    /// <summary>The plugin the instance was started for (StartInstance names it): its events go to this plugin's handler.</summary>
    public IKongPlugin Plugin { get; }

    /// <summary>The route, service and consumer the instance's plugin entity is scoped to, as Kong's config says.</summary>
    public InstanceScope Scope { get; }
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
/// The live instances, and nothing of the closed or expired ones: memory follows what Kong uses now, however
/// many instances it started before. Ids come from a counter that starts at a random point of the positive int32
/// range, so a restarted server does not hand out the ids Kong's workers still cache from the previous process
/// (Kong#8370; docs/protocol.md#instance-ids-and-recovery): an unknown id must get "no plugin instance", never
/// another config's instance. The counter wraps after int.MaxValue and skips live ids, so no id is handed out twice
/// within 2^31 starts. Instances of the same plugin with the same canonical config share one handler (compiled
/// policy, caches). Only really idle instances expire. A registry may hold the instances of several plugins (a
/// server serving several): ids are unique across them and each instance keeps its plugin.
/// </summary>
internal sealed class InstanceRegistry : IDisposable
{
    private readonly IKongPlugin[] _plugins;
    private readonly ServerLog _log;
    private readonly TimeSpan _idleTimeout;
    private readonly ConcurrentDictionary<int, PluginInstance> _instances = new();
    private readonly Dictionary<string, SharedHandler> _handlers = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private int _lastId = RandomNumberGenerator.GetInt32(1, int.MaxValue); // guarded by _lock
    private readonly Timer? _sweeper;

    public InstanceRegistry(IKongPlugin plugin, ServerLog log, TimeSpan idleTimeout, bool sweep = true)
        : this([plugin], log, idleTimeout, sweep) { }

    /// <summary>A registry for the instances of <paramref name="plugins"/> (at least one).</summary>
    public InstanceRegistry(IReadOnlyList<IKongPlugin> plugins, ServerLog log, TimeSpan idleTimeout, bool sweep = true)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        if (plugins.Count == 0) throw new ArgumentException("at least one plugin", nameof(plugins));
        _plugins = [.. plugins];
        _log = log;
        _idleTimeout = idleTimeout;
        if (sweep && idleTimeout > TimeSpan.Zero)
        {
            var period = TimeSpan.FromTicks(Math.Clamp(idleTimeout.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
            _sweeper = new Timer(_ => ExpireIdle(), null, period, period);
        }
    }

    /// <summary>The plugins whose instances this registry starts.</summary>
    public IReadOnlyList<IKongPlugin> Plugins => _plugins;

    public int Count => _instances.Count;
    public int HandlerCount { get { lock (_lock) return _handlers.Count; } }

    /// <summary>Entries held in all of the registry's tables (instances, shared handlers): bounded by the live instances.</summary>
    internal int Entries { get { lock (_lock) return _instances.Count + _handlers.Count; } }

    public bool TryGet(int id, out PluginInstance instance) => _instances.TryGetValue(id, out instance!);

    /// <summary>Starts an instance of the first plugin for Kong's config JSON. Raises <see cref="ConfigException"/> for a bad config.</summary>
    public PluginInstance Start(ReadOnlySpan<byte> configJson) => Start(_plugins[0], configJson);

    /// <summary>Starts an instance of <paramref name="plugin"/> (one of <see cref="Plugins"/>) for Kong's config JSON.
    /// Raises <see cref="ConfigException"/> for a bad config.</summary>
    public PluginInstance Start(IKongPlugin plugin, ReadOnlySpan<byte> configJson)
    {
        if (Array.IndexOf(_plugins, plugin) < 0) throw new ArgumentException($"plugin '{plugin.Info.Name}' is not served here", nameof(plugin));
        var canonical = plugin.Canonicalize(configJson);
        var scope = InstanceScope.Read(configJson);
        // the plugin's name is part of the key: two plugins never share a handler, whatever their configs
        string key = plugin.Info.Name + "\n" + Convert.ToBase64String(SHA256.HashData(canonical));
        SharedHandler? shared;
        lock (_lock) _handlers.TryGetValue(key, out shared);
        if (shared is null)
        {
            var handler = plugin.CreateHandler(configJson); // outside the lock: may be slow
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
            var inst = new PluginInstance(id, plugin, shared, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), scope);
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

    /// <summary>The next id after the last one issued (under <see cref="_lock"/>).</summary>
    private int NewId()
    {
        while (true)
        {
            _lastId = _lastId == int.MaxValue ? 1 : _lastId + 1;
            if (!_instances.ContainsKey(_lastId)) return _lastId; // only after 2^31 starts can a live id come round
        }
    }

    public void Dispose()
    {
        _sweeper?.Dispose();
        foreach (var id in _instances.Keys) Close(id);
    }
}
