namespace Kong.PluginServer.Pdk;

/// <summary>kong.log: Kong's error log (Kong prefixes the plugin name) and the serializer used by log plugins.</summary>
public sealed class PdkLog : PdkModule
{
    internal PdkLog(PdkSession s) : base(s) { }

    public ValueTask AlertAsync(params object?[] items) => Set(PdkMethods.LogAlert, new PdkArgs(value: items));
    public ValueTask CritAsync(params object?[] items) => Set(PdkMethods.LogCrit, new PdkArgs(value: items));
    public ValueTask ErrAsync(params object?[] items) => Set(PdkMethods.LogErr, new PdkArgs(value: items));
    public ValueTask WarnAsync(params object?[] items) => Set(PdkMethods.LogWarn, new PdkArgs(value: items));
    public ValueTask NoticeAsync(params object?[] items) => Set(PdkMethods.LogNotice, new PdkArgs(value: items));
    public ValueTask InfoAsync(params object?[] items) => Set(PdkMethods.LogInfo, new PdkArgs(value: items));
    public ValueTask DebugAsync(params object?[] items) => Set(PdkMethods.LogDebug, new PdkArgs(value: items));

    // One message without the params array: no allocation beyond the string.
    public ValueTask AlertAsync(string message) => Set(PdkMethods.LogAlert, new PdkArgs(text: message));
    public ValueTask CritAsync(string message) => Set(PdkMethods.LogCrit, new PdkArgs(text: message));
    public ValueTask ErrAsync(string message) => Set(PdkMethods.LogErr, new PdkArgs(text: message));
    public ValueTask WarnAsync(string message) => Set(PdkMethods.LogWarn, new PdkArgs(text: message));
    public ValueTask NoticeAsync(string message) => Set(PdkMethods.LogNotice, new PdkArgs(text: message));
    public ValueTask InfoAsync(string message) => Set(PdkMethods.LogInfo, new PdkArgs(text: message));
    public ValueTask DebugAsync(string message) => Set(PdkMethods.LogDebug, new PdkArgs(text: message));

    internal ValueTask MessageAsync(PdkMethod level, string message) => Set(level, new PdkArgs(text: message));

    /// <summary>kong.log.set_serialize_value: adds <paramref name="key"/> (dotted paths allowed) to what log plugins see. Call it before the log phase.</summary>
    public ValueTask SetSerializeValueAsync(string key, object? value) => Set(PdkMethods.LogSetSerializeValue, PdkArgs.KV(key, value));

    /// <summary>kong.log.serialize: the JSON text of Kong's log record (log phase only).</summary>
    public ValueTask<string> SerializeAsync() => Call(PdkMethods.LogSerialize, PdkArgs.None, Decode.String);
}
