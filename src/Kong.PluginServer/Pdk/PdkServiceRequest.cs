namespace Kong.PluginServer.Pdk;

/// <summary>kong.service.request: the request Kong sends upstream.</summary>
public sealed class PdkServiceRequest : PdkModule
{
    internal PdkServiceRequest(PdkSession s) : base(s) { }

    public ValueTask SetSchemeAsync(string scheme) => Set(PdkMethods.ServiceRequestSetScheme, PdkArgs.Of(scheme));
    public ValueTask SetPathAsync(string path) => Set(PdkMethods.ServiceRequestSetPath, PdkArgs.Of(path));
    public ValueTask SetRawQueryAsync(string query) => Set(PdkMethods.ServiceRequestSetRawQuery, PdkArgs.Of(query));
    public ValueTask SetMethodAsync(string method) => Set(PdkMethods.ServiceRequestSetMethod, PdkArgs.Of(method));
    public ValueTask SetQueryAsync(object args) => Set(PdkMethods.ServiceRequestSetQuery, new PdkArgs(value: args));
    public ValueTask SetHeaderAsync(string name, string value) => Set(PdkMethods.ServiceRequestSetHeader, PdkArgs.KV(name, value));
    public ValueTask AddHeaderAsync(string name, string value) => Set(PdkMethods.ServiceRequestAddHeader, PdkArgs.KV(name, value));
    public ValueTask ClearHeaderAsync(string name) => Set(PdkMethods.ServiceRequestClearHeader, PdkArgs.Of(name));
    /// <summary>Sets several headers in one step, one value each.</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, string> headers) => Set(PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers in one step, each with its values (a <see cref="KongMultiMap"/> fits).</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, string[]> headers) => Set(PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers in one step, each with its values.</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, IReadOnlyList<string>> headers) => Set(PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers in one step from a value that writes the name → value map itself (no dictionary: the hot path).</summary>
    public ValueTask SetHeadersAsync(IPdkValue headers) => Set(PdkMethods.ServiceRequestSetHeaders, new PdkArgs(value: headers));
    public ValueTask SetRawBodyAsync(ReadOnlyMemory<byte> body) => Set(PdkMethods.ServiceRequestSetRawBody, new PdkArgs(bytes: body));
}
