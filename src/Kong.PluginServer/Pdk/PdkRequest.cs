namespace Kong.PluginServer.Pdk;

/// <summary>kong.request: the downstream request as the client sent it.</summary>
public sealed class PdkRequest : PdkModule
{
    internal PdkRequest(PdkSession s) : base(s) { }

    public ValueTask<string> GetSchemeAsync() => Call(PdkMethods.RequestGetScheme, PdkArgs.None, Decode.String);
    public ValueTask<string> GetHostAsync() => Call(PdkMethods.RequestGetHost, PdkArgs.None, Decode.String);
    public ValueTask<int> GetPortAsync() => Call(PdkMethods.RequestGetPort, PdkArgs.None, Decode.Int);
    public ValueTask<string> GetForwardedSchemeAsync() => Call(PdkMethods.RequestGetForwardedScheme, PdkArgs.None, Decode.String);
    public ValueTask<string> GetForwardedHostAsync() => Call(PdkMethods.RequestGetForwardedHost, PdkArgs.None, Decode.String);
    public ValueTask<int> GetForwardedPortAsync() => Call(PdkMethods.RequestGetForwardedPort, PdkArgs.None, Decode.Int);
    public ValueTask<double> GetHttpVersionAsync() => Call(PdkMethods.RequestGetHttpVersion, PdkArgs.None, Decode.Number);
    public ValueTask<string> GetMethodAsync() => Call(PdkMethods.RequestGetMethod, PdkArgs.None, Decode.String);
    /// <summary>The normalized path, without the query string.</summary>
    public ValueTask<string> GetPathAsync() => Call(PdkMethods.RequestGetPath, PdkArgs.None, Decode.String);
    public ValueTask<string> GetPathWithQueryAsync() => Call(PdkMethods.RequestGetPathWithQuery, PdkArgs.None, Decode.String);
    public ValueTask<string> GetRawQueryAsync() => Call(PdkMethods.RequestGetRawQuery, PdkArgs.None, Decode.String);

    /// <summary>One query argument. Kong raises on a value-less flag (<c>?x</c>); prefer <see cref="GetQueryAsync"/>.</summary>
    public ValueTask<string> GetQueryArgAsync(string name) => Call(PdkMethods.RequestGetQueryArg, PdkArgs.Of(name), Decode.String);

    /// <summary>The query arguments; <paramref name="max"/> in 1..1000 (Kong raises on 0).</summary>
    public ValueTask<KongMultiMap> GetQueryAsync(int max = 100) =>
        Call(PdkMethods.RequestGetQuery, PdkArgs.Of(ClampMax(max)), Decode.MultiMap);

    /// <summary>The first value of a header (case-insensitive), or "" when absent.</summary>
    public ValueTask<string> GetHeaderAsync(string name) => Call(PdkMethods.RequestGetHeader, PdkArgs.Of(name), Decode.String);

    /// <summary>Like <see cref="GetHeaderAsync"/> but returns the raw bytes, valid until the event ends: no string is made.</summary>
    public ValueTask<ReadOnlyMemory<byte>> GetHeaderUtf8Async(string name) => Call(PdkMethods.RequestGetHeader, PdkArgs.Of(name), Decode.Utf8);

    /// <summary>All headers, lower-case names; <paramref name="max"/> in 1..1000 (Kong raises on 0).</summary>
    public ValueTask<KongMultiMap> GetHeadersAsync(int max = 100) =>
        Call(PdkMethods.RequestGetHeaders, PdkArgs.Of(ClampMax(max)), Decode.MultiMap);

    /// <summary>All headers as a raw view searched on demand: one round trip, no dictionary.</summary>
    public ValueTask<KongHeaderView> GetHeadersViewAsync(int max = 100) =>
        Call(PdkMethods.RequestGetHeaders, PdkArgs.Of(ClampMax(max)), Decode.HeaderView);

    public ValueTask<KongRawBody> GetRawBodyAsync() => Call(PdkMethods.RequestGetRawBody, PdkArgs.None, Decode.RawBody);

    /// <summary>Regex captures of the matched route path (Kong 3.1+).</summary>
    public ValueTask<KongUriCaptures> GetUriCapturesAsync() => Call(PdkMethods.RequestGetUriCaptures, PdkArgs.None, Decode.UriCaptures);

    internal static int ClampMax(int max) => Math.Clamp(max, 1, 1000);
}
