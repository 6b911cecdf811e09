namespace Kong.PluginServer.Pdk;

/// <summary>kong.ip.</summary>
public sealed class PdkIp(PdkSession s) : PdkModule(s)
{
    public ValueTask<bool> IsTrustedAsync(string address) => Call(PdkMethods.IpIsTrusted, PdkArgs.Of(address), Decode.Bool);
}
