namespace Kong.PluginServer.Testing;

/// <summary>
/// A simulated Kong gateway (3.8+/3.9 behaviour) driving one external plugin server over its real Unix socket:
/// N nginx workers (<see cref="Worker"/>), each with its own keep-alive connection pool, RPC counters and instance
/// cache; plugin entities with Kong's injected config keys and <c>__seq__</c> rebuilds; and Kong's side of the PDK,
/// served from a <see cref="SimRequest"/> and recorded into a <see cref="SimResult"/>.
/// <code>
/// await using var kong = new KongSimulator(socketPath, KongProtocol.ProtoBuf, pluginName: "example");
/// var entity = kong.AddPlugin("""{"header_name":"x-api-key"}""");
/// var r = await kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-api-key"] = "k" } });
/// Assert.Equal(200, r.Status);
/// </code>
/// Thread-safe: events may run concurrently on any worker.
/// </summary>
public sealed class KongSimulator : IAsyncDisposable, IDisposable
{
    private readonly KongWorker[] _workers;
    private readonly List<PluginEntity> _entities = new();
    private readonly object _lock = new();
    private long _seq;

    /// <summary>Creates the simulator. Nothing connects until the first event.</summary>
    /// <param name="socketPath">The plugin server's Unix socket (<c>pluginserver_&lt;name&gt;_socket</c>).</param>
    /// <param name="protocol">The protocol the server's dump declares.</param>
    /// <param name="pluginName">The plugin's Name (sent in StartInstance).</param>
    /// <param name="workers">Number of nginx workers.</param>
    /// <param name="options">Knobs; null for Kong's defaults.</param>
    public KongSimulator(string socketPath, KongProtocol protocol, string pluginName, int workers = 1, KongSimulatorOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        SocketPath = socketPath;
        Protocol = protocol;
        PluginName = pluginName;
        Options = options ?? new KongSimulatorOptions();
        _workers = Enumerable.Range(0, workers).Select(i => new KongWorker(this, i)).ToArray();
    }

    /// <summary>The server's socket path.</summary>
    public string SocketPath { get; }
    /// <summary>The protocol spoken.</summary>
    public KongProtocol Protocol { get; }
    /// <summary>The plugin name.</summary>
    public string PluginName { get; }
    /// <summary>The options (may be changed between events).</summary>
    public KongSimulatorOptions Options { get; }
    /// <summary>Kong's node id (<c>kong.node.get_id</c>).</summary>
    public string NodeId { get; set; } = "6a5c0a3e-8f1b-4c4e-9d51-2f0d2b1c7a10";
    /// <summary>The workspace id of new entities (<c>__ws_id</c>).</summary>
    public string WorkspaceId { get; set; } = "0dc6f45b-8f8d-40d2-a504-473544ee190b";
    /// <summary>Kong's consumers table, for <c>kong.client.load_consumer</c>.</summary>
    public List<SimConsumer> Consumers { get; } = new();
    /// <summary>Number of workers.</summary>
    public int WorkerCount => _workers.Length;
    /// <summary>The current value of the shared <c>__seq__</c> counter (0 before any entity exists).</summary>
    public long CurrentSeq => Interlocked.Read(ref _seq);
    /// <summary>The plugin entities added so far.</summary>
    public IReadOnlyList<PluginEntity> Entities { get { lock (_lock) return _entities.ToArray(); } }

    /// <summary>Worker <paramref name="index"/> (0-based), like an nginx worker process.</summary>
    public KongWorker Worker(int index) => _workers[index];

    /// <summary>
    /// Adds a plugin entity (which rebuilds the plugins iterator: every entity gets a new <c>__seq__</c>).
    /// </summary>
    /// <param name="configJson">The plugin's config record as JSON (schema fields only; explicit <c>null</c>s allowed).</param>
    /// <param name="routeId">Route scope (<c>route_id</c>), or null.</param>
    /// <param name="serviceId">Service scope (<c>service_id</c>), or null.</param>
    /// <param name="consumerId">Consumer scope (<c>consumer_id</c>), or null.</param>
    /// <param name="id">Entity UUID; null generates one.</param>
    /// <param name="nullFields">Config fields to send as explicit <c>null</c> when absent (Kong's unset schema fields).</param>
    /// <param name="emptyArraysAsObjects">Override of <see cref="KongSimulatorOptions.EmptyArraysAsObjects"/> for this entity.</param>
    /// <param name="instanceName">The plugin's instance_name (<c>plugin_instance_name</c>), or null.</param>
    public PluginEntity AddPlugin(string configJson = "{}", string? routeId = null, string? serviceId = null, string? consumerId = null,
        string? id = null, IEnumerable<string>? nullFields = null, bool? emptyArraysAsObjects = null, string? instanceName = null)
    {
        lock (_lock)
        {
            var entity = new PluginEntity(id ?? Guid.NewGuid().ToString(), PluginName, configJson, routeId, serviceId, consumerId,
                WorkspaceId, instanceName, emptyArraysAsObjects ?? Options.EmptyArraysAsObjects, nullFields, 0);
            _entities.Add(entity);
            RebuildLocked(null, null);
            return entity;
        }
    }

    /// <summary>Changes an entity's config: a rebuild, so every entity gets a new <c>__seq__</c> and the next event in
    /// each worker starts a new instance (then closes the old one).</summary>
    public void UpdateConfig(PluginEntity entity, string configJson)
    {
        lock (_lock) RebuildLocked(entity, configJson);
    }

    /// <summary>Rebuilds the plugins iterator without a config change (as a DB-less config push does): new <c>__seq__</c> for every entity.</summary>
    public void Rebuild()
    {
        lock (_lock) RebuildLocked(null, null);
    }

    private void RebuildLocked(PluginEntity? changed, string? json)
    {
        foreach (var e in _entities)
        {
            long seq = Interlocked.Increment(ref _seq);
            if (ReferenceEquals(e, changed)) e.SetConfig(json!, seq);
            else e.SetSeq(seq);
        }
    }

    /// <summary>Drops every worker's cached instances (as a plugin_server/reset_instances event does).</summary>
    public void ResetInstances()
    {
        foreach (var w in _workers) w.ResetInstances();
    }

    /// <summary>Runs one event on worker 0.</summary>
    public Task<SimResult> RunAsync(PluginEntity entity, string phase, SimRequest? request = null, CancellationToken cancellationToken = default) =>
        _workers[0].RunAsync(entity, phase, request, cancellationToken);

    /// <summary>Closes every pooled connection.</summary>
    public void Dispose()
    {
        foreach (var w in _workers) w.ClosePool();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
