namespace Kong.PluginServer.Pdk;

/// <summary>kong.ctx: request-scoped data shared with the other plugins (kong.ctx.shared).</summary>
public sealed class PdkCtx : PdkModule
{
    internal PdkCtx(PdkSession s) : base(s) { }

    /// <summary>kong.ctx.shared.set. Over ProtoBuf:1 Kong stores <c>false</c> and null as nil (docs/protocol.md#value-unwrap).</summary>
    public ValueTask SetSharedAsync(string key, object? value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value));

    public ValueTask SetSharedAsync(string key, string? value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value));
    public ValueTask SetSharedAsync(string key, long value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value));
    public ValueTask SetSharedAsync(string key, double value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value));
    /// <summary>Over ProtoBuf:1 Kong stores <c>false</c> as nil: <see cref="GetSharedBoolAsync"/> then reads null.</summary>
    public ValueTask SetSharedAsync(string key, bool value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value ? BoxedTrue : BoxedFalse));

    /// <summary>kong.ctx.shared.get: null when the key is missing.</summary>
    public ValueTask<object?> GetSharedAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), Decode.Value);

    /// <summary>kong.ctx.shared.get of a string; null when missing or not a string.</summary>
    public ValueTask<string?> GetSharedStringAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), SharedString);

    /// <summary>kong.ctx.shared.get of an integer (Lua has numbers: an integral one); null when missing, not a number or not integral.</summary>
    public ValueTask<long?> GetSharedLongAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), SharedLong);

    /// <summary>kong.ctx.shared.get of a number; null when missing or not a number.</summary>
    public ValueTask<double?> GetSharedDoubleAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), SharedDouble);

    /// <summary>kong.ctx.shared.get of a boolean; null when missing or not a boolean.</summary>
    public ValueTask<bool?> GetSharedBoolAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), SharedBool);

    private static readonly object BoxedTrue = true, BoxedFalse = false;

    private static readonly ReplyDecoder<string?> SharedString = static (c, r, _) => c.ReadValue(r) switch
    {
        string s => s,
        byte[] b => System.Text.Encoding.UTF8.GetString(b),
        _ => null,
    };

    private static readonly ReplyDecoder<double?> SharedDouble = static (c, r, _) => Number(c.ReadValue(r));

    private static readonly ReplyDecoder<long?> SharedLong = static (c, r, _) =>
        Number(c.ReadValue(r)) is { } d && d == Math.Floor(d) && d is >= long.MinValue and <= long.MaxValue ? (long)d : null;

    private static readonly ReplyDecoder<bool?> SharedBool = static (c, r, _) => c.ReadValue(r) is bool b ? b : null;

    private static double? Number(object? value) => value switch
    {
        double d => d,
        long l => l,
        int i => i,
        ulong u => u,
        float f => f,
        _ => null,
    };
}
