namespace Kong.PluginServer.Pdk;

/// <summary>kong.ctx: request-scoped data shared with the other plugins (kong.ctx.shared).</summary>
public sealed class PdkCtx : PdkModule
{
    internal PdkCtx(PdkSession s) : base(s) { }

    /// <summary>kong.ctx.shared.set. Over ProtoBuf:1 Kong stores <c>false</c> and null as nil (docs/protocol.md#value-unwrap).</summary>
    public ValueTask SetSharedAsync(string key, object? value) => Set(PdkMethods.CtxSharedSet, PdkArgs.KV(key, value));

    /// <summary>kong.ctx.shared.get: null when the key is missing.</summary>
    public ValueTask<object?> GetSharedAsync(string key) => Call(PdkMethods.CtxSharedGet, PdkArgs.Of(key), Decode.Value);
}
