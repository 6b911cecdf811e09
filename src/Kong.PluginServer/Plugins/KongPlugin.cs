using Kong.PluginServer.Pdk;

namespace Kong.PluginServer.Plugins;

/// <summary>
/// What Kong learns from `-dump`: name, version, priority, phases and the schema: the config fields, the other
/// fields of the plugin entity the plugin restricts (<see cref="EntityFields"/>: Kong's typedefs such as
/// <see cref="Schema.NoConsumer"/> and <see cref="Schema.ProtocolsHttp"/>), and the cross-field rules
/// (<see cref="EntityChecks"/>).
/// </summary>
public sealed record PluginInfo(string Name, string Version, int Priority, KongPhase Phases, IReadOnlyList<SchemaField> ConfigFields)
{
    public IEnumerable<string> PhaseNames => KongPhases.All.Where(p => Phases.HasFlag(p)).Select(KongPhases.Name);

    /// <summary>Top-level fields of the plugin entity besides <c>config</c>, in Kong's order (consumer, protocols, ...).</summary>
    public IReadOnlyList<SchemaField> EntityFields { get; init; } = [];

    /// <summary>The schema's <c>entity_checks</c>, with fields named from the entity (<c>config.x</c>).</summary>
    public IReadOnlyList<EntityCheck> EntityChecks { get; init; } = [];

    /// <summary>The fields of the plugin entity as Kong sees them: <see cref="EntityFields"/> then <c>config</c>.</summary>
    public IReadOnlyList<SchemaField> SchemaFields => [.. EntityFields, Schema.Record("config", ConfigFields, required: true)];

    /// <summary>
    /// Refuses declarations Kong would fail to load or to run: an entity field named <c>config</c> or twice, an
    /// entity check naming a field the schema does not have (Kong would raise on every validation).
    /// </summary>
    public PluginInfo Checked()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in SchemaFields)
            if (!names.Add(f.Name)) throw new InvalidOperationException($"{Name}: the schema declares the field '{f.Name}' twice");
        foreach (var check in EntityChecks)
            foreach (var path in check.Fields)
                if (Resolve(path) is null) throw new InvalidOperationException($"{Name}: entity check {check.Kind} names '{path}', which the schema does not declare");
        return this;
    }

    /// <summary>The field an entity path (<c>config.jwks_uri</c>) names, through records; null when there is none.</summary>
    public SchemaField? Resolve(string path)
    {
        IReadOnlyList<SchemaField>? fields = SchemaFields;
        SchemaField? found = null;
        foreach (var part in path.Split('.'))
        {
            found = fields?.FirstOrDefault(f => f.Name == part);
            if (found is null) return null;
            fields = found.Type.Fields;
        }
        return found;
    }
}

/// <summary>The handler of one plugin instance (one config): called once per event of each declared phase.</summary>
public interface IPluginHandler : IDisposable
{
    ValueTask HandleAsync(KongPhase phase, KongPdk kong);
}

/// <summary>A plugin as the server hosts it. Implement <see cref="KongPlugin{TConfig}"/> rather than this.</summary>
public interface IKongPlugin
{
    PluginInfo Info { get; }

    /// <summary>Builds a handler from Kong's config JSON; raises <see cref="ConfigException"/> naming the field.</summary>
    IPluginHandler CreateHandler(ReadOnlySpan<byte> configJson);

    /// <summary>The canonical form of a config (Kong's injected keys removed, defaults filled): equal forms share a handler.</summary>
    byte[] Canonicalize(ReadOnlySpan<byte> configJson);
}

/// <summary>
/// Base class of a plugin with a typed config. The config is declared once, on its class, with
/// <see cref="KongConfigAttribute"/> and <see cref="KongFieldAttribute"/>: the generated
/// <see cref="IKongConfig{TSelf}.KongFields"/> (<see cref="ConfigFields"/>) drive the dump, the lenient reading of
/// Kong's JSON, defaults and validation, and the generated <see cref="IKongConfig{TSelf}.ReadKongConfig"/> reads
/// the typed config (no reflection: NativeAOT-safe). Override the phase methods you declare in <see cref="Phases"/>.
/// </summary>
public abstract class KongPlugin<TConfig> : IKongPlugin where TConfig : class, IKongConfig<TConfig>
{
    private PluginInfo? _info;

    public abstract string Name { get; }
    public abstract string Version { get; }
    public abstract int Priority { get; }
    public abstract KongPhase Phases { get; }

    /// <summary>The config fields, as the config class declares them.</summary>
    public IReadOnlyList<SchemaField> ConfigFields => TConfig.KongFields;

    /// <summary>Top-level fields of the plugin entity the plugin restricts, e.g. <c>[Schema.NoConsumer(), Schema.ProtocolsHttp()]</c>.</summary>
    public virtual IReadOnlyList<SchemaField> EntityFields => [];

    /// <summary>Cross-field rules (Kong's entity_checks); the server enforces those over config fields too.</summary>
    public virtual IReadOnlyList<EntityCheck> EntityChecks => [];

    public PluginInfo Info => _info ??= new PluginInfo(Name, Version, Priority, Phases, ConfigFields)
    {
        EntityFields = EntityFields,
        EntityChecks = EntityChecks,
    }.Checked();

    /// <summary>Checks beyond the schema; raise <see cref="ConfigException"/>.</summary>
    protected virtual void Validate(TConfig config) { }

    /// <summary>Builds the handler for one config. Heavy shared state (caches, key stores) belongs in the plugin, not here.</summary>
    protected abstract IPluginHandler CreateHandler(TConfig config);

    public byte[] Canonicalize(ReadOnlySpan<byte> configJson) => ConfigNormalizer.Normalize(configJson, ConfigFields, Info.EntityChecks);

    public IPluginHandler CreateHandler(ReadOnlySpan<byte> configJson) => CreateHandler(ParseConfig(configJson));

    /// <summary>Kong's config JSON → the typed config, validated.</summary>
    public TConfig ParseConfig(ReadOnlySpan<byte> configJson) => Typed(Canonicalize(configJson));

    /// <summary>
    /// Every problem the server would refuse the config for when an instance starts, without starting one: all
    /// schema problems (fields, then entity checks), or else the first problem <see cref="Validate"/> finds.
    /// Empty when the config would start.
    /// </summary>
    public IReadOnlyList<ConfigException> Lint(ReadOnlySpan<byte> configJson)
    {
        var problems = ConfigNormalizer.Check(configJson, ConfigFields, Info.EntityChecks, out var canonical);
        if (problems.Count > 0) return problems;
        try { Typed(canonical!); }
        catch (ConfigException e) { return [e]; }
        return [];
    }

    private TConfig Typed(byte[] canonical)
    {
        var config = TConfig.ReadKongConfig(canonical);
        Validate(config);
        return config;
    }
}

/// <summary>A handler made of delegates per phase, for small plugins.</summary>
public abstract class PluginHandler : IPluginHandler
{
    public ValueTask HandleAsync(KongPhase phase, KongPdk kong) => phase switch
    {
        KongPhase.Access => AccessAsync(kong),
        KongPhase.Rewrite => RewriteAsync(kong),
        KongPhase.Response => ResponseAsync(kong),
        KongPhase.Log => LogAsync(kong),
        KongPhase.Certificate => CertificateAsync(kong),
        KongPhase.Preread => PrereadAsync(kong),
        _ => ValueTask.CompletedTask,
    };

    public virtual ValueTask AccessAsync(KongPdk kong) => ValueTask.CompletedTask;
    public virtual ValueTask RewriteAsync(KongPdk kong) => ValueTask.CompletedTask;
    public virtual ValueTask ResponseAsync(KongPdk kong) => ValueTask.CompletedTask;
    public virtual ValueTask LogAsync(KongPdk kong) => ValueTask.CompletedTask;
    public virtual ValueTask CertificateAsync(KongPdk kong) => ValueTask.CompletedTask;
    public virtual ValueTask PrereadAsync(KongPdk kong) => ValueTask.CompletedTask;

    public virtual void Dispose() { }
}
