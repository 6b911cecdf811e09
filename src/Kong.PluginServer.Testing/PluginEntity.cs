using System.Text;
using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

/// <summary>
/// A plugin entity (one row of Kong's <c>plugins</c> table: a configuration of the plugin, optionally scoped to a
/// route/service/consumer). Each worker caches one server instance per entity, keyed by <see cref="Id"/>.
/// </summary>
public sealed class PluginEntity
{
    private volatile ConfigSnapshot _current;
    private string _configJson;
    private readonly string[] _nullFields;

    internal PluginEntity(string id, string name, string configJson, string? routeId, string? serviceId, string? consumerId,
        string workspaceId, string? instanceName, bool emptyArraysAsObjects, IEnumerable<string>? nullFields, long seq)
    {
        Id = id;
        Name = name;
        RouteId = routeId;
        ServiceId = serviceId;
        ConsumerId = consumerId;
        WorkspaceId = workspaceId;
        InstanceName = instanceName;
        EmptyArraysAsObjects = emptyArraysAsObjects;
        _nullFields = nullFields?.ToArray() ?? Array.Empty<string>();
        _configJson = configJson;
        _current = Build(seq);
    }

    /// <summary>The plugin entity UUID (<c>__plugin_id</c>, and the instance cache key).</summary>
    public string Id { get; }
    /// <summary>Plugin name (<c>StartInstance.name</c>).</summary>
    public string Name { get; }
    /// <summary>Scope: route id, or null.</summary>
    public string? RouteId { get; }
    /// <summary>Scope: service id, or null.</summary>
    public string? ServiceId { get; }
    /// <summary>Scope: consumer id, or null.</summary>
    public string? ConsumerId { get; }
    /// <summary>Workspace id (<c>__ws_id</c>).</summary>
    public string WorkspaceId { get; }
    /// <summary>The plugin's instance name (<c>plugin_instance_name</c>), or null.</summary>
    public string? InstanceName { get; }
    /// <summary>True (Kong's cjson): an empty JSON array in the config is sent as <c>{}</c>.</summary>
    public bool EmptyArraysAsObjects { get; }
    /// <summary>The config as given (without Kong's injected keys).</summary>
    public string ConfigJson => _configJson;
    /// <summary>The current <c>__seq__</c>.</summary>
    public long Seq => _current.Seq;
    /// <summary>Exactly the config JSON text a StartInstance sends now (cjson-encoded, injected keys included).</summary>
    public string KongConfigJson => _current.Json;
    /// <summary><c>__key__</c>: <c>plugins:&lt;name&gt;:&lt;route_id&gt;:&lt;service_id&gt;:&lt;consumer_id&gt;::&lt;ws_id&gt;</c>.</summary>
    public string Key => $"plugins:{Name}:{RouteId}:{ServiceId}:{ConsumerId}::{WorkspaceId}";

    internal ConfigSnapshot Current => _current;

    internal void SetConfig(string json, long seq)
    {
        _configJson = json;
        _current = Build(seq);
    }

    internal void SetSeq(long seq) => _current = Build(seq);

    private ConfigSnapshot Build(long seq)
    {
        var conf = Cjson.Decode(_configJson) as Dictionary<string, object?>
                   ?? throw new ArgumentException("the plugin config must be a JSON object", nameof(ConfigJson));
        foreach (var f in _nullFields) if (!conf.ContainsKey(f)) conf[f] = CjsonNull.Instance;
        foreach (var k in new[] { "route_id", "service_id", "consumer_id", "plugin_instance_name", "__plugin_id", "__ws_id", "__key__", "__seq__" })
            conf.Remove(k);
        if (RouteId is not null) conf["route_id"] = RouteId;
        if (ServiceId is not null) conf["service_id"] = ServiceId;
        if (ConsumerId is not null) conf["consumer_id"] = ConsumerId;
        if (InstanceName is not null) conf["plugin_instance_name"] = InstanceName;
        conf["__plugin_id"] = Id;
        conf["__ws_id"] = WorkspaceId;
        conf["__key__"] = Key;
        conf["__seq__"] = (double)seq;
        var json = Cjson.Encode(conf, EmptyArraysAsObjects);
        return new ConfigSnapshot(seq, json, Encoding.UTF8.GetBytes(json));
    }

    /// <inheritdoc />
    public override string ToString() => $"plugin {Name} {Id} seq={Seq}";
}

internal sealed record ConfigSnapshot(long Seq, string Json, byte[] Utf8);

/// <summary>Knobs of the simulated Kong. Defaults are Kong 3.8+/3.9 behaviour.</summary>
public sealed class KongSimulatorOptions
{
    /// <summary>Cosocket timeout for connect, each send and each receive (Kong: 60 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>Maximum replays of one event after "closed"/"no plugin instance" (Kong has no limit; the simulator stops and fails with 500).</summary>
    public int MaxReplays { get; set; } = 5;
    /// <summary>Keep-alive pool size per worker (lua_socket_pool_size; Kong sets 256).</summary>
    public int PoolSize { get; set; } = 256;
    /// <summary>
    /// false (default): a pooled connection is checked when it is taken from the pool (closed by the server: not used).
    /// true: as nginx does it, a pooled connection is not checked when taken; a watcher (every millisecond) closes
    /// pooled connections that turned readable (EOF, stray bytes), so a request that takes one first writes into it:
    /// the send fails if the server closed it (Kong's <c>assert</c> raises), or succeeds and the read sees EOF if the
    /// server only shut its write side.
    /// </summary>
    public bool NginxPool { get; set; }
    /// <summary>Idle time after which a pooled connection is dropped (Kong: 60 s).</summary>
    public TimeSpan PoolIdleTimeout { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>ProtoBuf: true (Kong 3.8+) answers 500 on a pluginserver error; false logs and lets the request through (older Kong).</summary>
    public bool FailClosed { get; set; } = true;
    /// <summary>A reset (before a replay) also drops the cached instances of the other workers (Kong 3.6+ broadcast).</summary>
    public bool BroadcastResets { get; set; } = true;
    /// <summary>How long a request waits for another request of the same worker that is starting the instance (Kong: 10 s).</summary>
    public TimeSpan ClaimTimeout { get; set; } = TimeSpan.FromSeconds(10);
    /// <summary>Default for <see cref="PluginEntity.EmptyArraysAsObjects"/> (true: cjson encodes an empty array as <c>{}</c>).</summary>
    public bool EmptyArraysAsObjects { get; set; } = true;
    /// <summary>Kong's <c>trusted_ips</c> for <c>kong.ip.is_trusted</c> (exact addresses, or 0.0.0.0/0 and ::/0).</summary>
    public HashSet<string> TrustedIps { get; set; } = new(StringComparer.Ordinal);
}
