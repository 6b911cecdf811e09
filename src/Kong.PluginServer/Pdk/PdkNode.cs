namespace Kong.PluginServer.Pdk;

/// <summary>kong.node.</summary>
public sealed class PdkNode : PdkModule
{
    internal PdkNode(PdkSession s) : base(s) { }

    public ValueTask<string> GetIdAsync() => Call(PdkMethods.NodeGetId, PdkArgs.None, Decode.String);
    public ValueTask<KongMemoryStats> GetMemoryStatsAsync() => Call(PdkMethods.NodeGetMemoryStats, PdkArgs.None, Decode.MemoryStats);
}
