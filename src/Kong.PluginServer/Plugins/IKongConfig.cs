namespace Kong.PluginServer.Plugins;

/// <summary>
/// A plugin config declared once, with <see cref="KongConfigAttribute"/> and <see cref="KongFieldAttribute"/>: the
/// generator implements both members. <see cref="KongPlugin{TConfig}"/> takes the schema and the reader from here.
/// </summary>
public interface IKongConfig<TSelf> where TSelf : IKongConfig<TSelf>
{
    /// <summary>The config fields in declaration order: the dump's schema, the normalizer's rules and defaults.</summary>
    static abstract IReadOnlyList<SchemaField> KongFields { get; }

    /// <summary>
    /// The typed config from normalized config JSON (<see cref="ConfigNormalizer"/> output: defaults filled in,
    /// rules checked). Unknown keys are skipped; a JSON null leaves the property's default (null when nullable).
    /// Raises <see cref="ConfigException"/> for a value of the wrong JSON type.
    /// </summary>
    static abstract TSelf ReadKongConfig(ReadOnlySpan<byte> json);
}
