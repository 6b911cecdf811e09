namespace Kong.PluginServer.Pdk;

/// <summary>kong.router: the matched route and service.</summary>
public sealed class PdkRouter : PdkModule
{
    internal PdkRouter(PdkSession s) : base(s) { }

    public ValueTask<KongRoute?> GetRouteAsync() => Call(PdkMethods.RouterGetRoute, PdkArgs.None, Decode.Route);
    public ValueTask<KongService?> GetServiceAsync() => Call(PdkMethods.RouterGetService, PdkArgs.None, Decode.Service);
}
