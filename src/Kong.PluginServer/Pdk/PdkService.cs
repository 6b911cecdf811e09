namespace Kong.PluginServer.Pdk;

/// <summary>kong.service: where the request is proxied.</summary>
public sealed class PdkService : PdkModule
{
    internal PdkService(PdkSession s) : base(s) { }

    /// <summary>Sets the upstream entity by name (Kong 3.7+ returns a Bool; older Kong crashed, go-pdk#114).</summary>
    public ValueTask<bool> SetUpstreamAsync(string host) => Call(PdkMethods.ServiceSetUpstream, PdkArgs.Of(host), Decode.Bool);
    public ValueTask SetTargetAsync(string host, int port) => Set(PdkMethods.ServiceSetTarget, new PdkArgs(text: host, number: port));
}
