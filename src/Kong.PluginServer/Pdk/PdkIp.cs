namespace Kong.PluginServer.Pdk;

/// <summary>kong.ip.</summary>
public sealed class PdkIp : PdkModule
{
    internal PdkIp(PdkSession s) : base(s) { }

    public ValueTask<bool> IsTrustedAsync(string address) => Call(PdkMethods.IpIsTrusted, PdkArgs.Of(address), Decode.Bool);
}
