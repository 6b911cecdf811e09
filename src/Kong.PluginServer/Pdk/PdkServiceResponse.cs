namespace Kong.PluginServer.Pdk;

/// <summary>kong.service.response: the upstream's response (response and log phases).</summary>
public sealed class PdkServiceResponse : PdkModule
{
    internal PdkServiceResponse(PdkSession s) : base(s) { }

    public ValueTask<int> GetStatusAsync() => Call(PdkMethods.ServiceResponseGetStatus, PdkArgs.None, Decode.Int);
    public ValueTask<string> GetHeaderAsync(string name) => Call(PdkMethods.ServiceResponseGetHeader, PdkArgs.Of(name), Decode.String);
    public ValueTask<KongMultiMap> GetHeadersAsync(int max = 100) =>
        Call(PdkMethods.ServiceResponseGetHeaders, PdkArgs.Of(PdkRequest.ClampMax(max)), Decode.MultiMap);
    public ValueTask<byte[]> GetRawBodyAsync() => Call(PdkMethods.ServiceResponseGetRawBody, PdkArgs.None, Decode.Bytes);
}
