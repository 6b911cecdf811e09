using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kong.PluginServer.Pdk;

namespace Kong.PluginServer.Plugins;

/// <summary>What Kong learns from `-dump`: name, version, priority, phases and the config schema.</summary>
public sealed record PluginInfo(string Name, string Version, int Priority, KongPhase Phases, IReadOnlyList<SchemaField> ConfigFields)
{
    public IEnumerable<string> PhaseNames => KongPhases.All.Where(p => Phases.HasFlag(p)).Select(KongPhases.Name);
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
/// Base class of a plugin with a typed config. The schema is declared once (<see cref="ConfigFields"/>)
/// and drives the dump, the lenient reading of Kong's JSON, defaults and validation; the typed config is
/// read with a System.Text.Json source-generated <see cref="ConfigTypeInfo"/> (NativeAOT-safe).
/// Override the phase methods you declare in <see cref="Phases"/>.
/// </summary>
public abstract class KongPlugin<TConfig> : IKongPlugin where TConfig : class
{
    private PluginInfo? _info;

    public abstract string Name { get; }
    public abstract string Version { get; }
    public abstract int Priority { get; }
    public abstract KongPhase Phases { get; }
    public abstract IReadOnlyList<SchemaField> ConfigFields { get; }
    protected abstract JsonTypeInfo<TConfig> ConfigTypeInfo { get; }

    public PluginInfo Info => _info ??= new PluginInfo(Name, Version, Priority, Phases, ConfigFields);

    /// <summary>Checks beyond the schema; raise <see cref="ConfigException"/>.</summary>
    protected virtual void Validate(TConfig config) { }

    /// <summary>Builds the handler for one config. Heavy shared state (caches, key stores) belongs in the plugin, not here.</summary>
    protected abstract IPluginHandler CreateHandler(TConfig config);

    public byte[] Canonicalize(ReadOnlySpan<byte> configJson) => ConfigNormalizer.Normalize(configJson, ConfigFields);

    public IPluginHandler CreateHandler(ReadOnlySpan<byte> configJson) => CreateHandler(ParseConfig(configJson));

    /// <summary>Kong's config JSON → the typed config, validated.</summary>
    public TConfig ParseConfig(ReadOnlySpan<byte> configJson)
    {
        var canonical = Canonicalize(configJson);
        TConfig? config;
        try { config = JsonSerializer.Deserialize(canonical, ConfigTypeInfo); }
        catch (JsonException e) { throw new ConfigException(e.Path?.TrimStart('$', '.') ?? "", e.Message); }
        if (config is null) throw new ConfigException("", "the config is empty");
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
