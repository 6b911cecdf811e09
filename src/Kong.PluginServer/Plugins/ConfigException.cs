namespace Kong.PluginServer.Plugins;

/// <summary>A plugin config that cannot be used; <see cref="Field"/> names the offending field (e.g. "audiences", "rules[2].claims.ref").</summary>
public sealed class ConfigException(string field, string message) : Exception($"config.{field}: {message}")
{
    public string Field { get; } = field;
    public string Reason { get; } = message;
}
