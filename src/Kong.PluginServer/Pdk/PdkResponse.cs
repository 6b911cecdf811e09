using System.Text;

namespace Kong.PluginServer.Pdk;

/// <summary>kong.response: the response sent to the client.</summary>
public sealed class PdkResponse : PdkModule
{
    internal PdkResponse(PdkSession s) : base(s) { }

    public ValueTask<int> GetStatusAsync() => Call(PdkMethods.ResponseGetStatus, PdkArgs.None, Decode.Int);
    public ValueTask<string> GetHeaderAsync(string name) => Call(PdkMethods.ResponseGetHeader, PdkArgs.Of(name), Decode.String);
    public ValueTask<KongMultiMap> GetHeadersAsync(int max = 100) =>
        Call(PdkMethods.ResponseGetHeaders, PdkArgs.Of(PdkRequest.ClampMax(max)), Decode.MultiMap);
    /// <summary>"service", "exit" or "error".</summary>
    public ValueTask<string> GetSourceAsync() => Call(PdkMethods.ResponseGetSource, PdkArgs.None, Decode.String);

    public ValueTask SetStatusAsync(int status) => Set(PdkMethods.ResponseSetStatus, PdkArgs.Of(status));
    public ValueTask SetHeaderAsync(string name, string value) => Set(PdkMethods.ResponseSetHeader, PdkArgs.KV(name, value));
    public ValueTask AddHeaderAsync(string name, string value) => Set(PdkMethods.ResponseAddHeader, PdkArgs.KV(name, value));
    public ValueTask ClearHeaderAsync(string name) => Set(PdkMethods.ResponseClearHeader, PdkArgs.Of(name));
    /// <summary>Sets several headers, one value each.</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, string> headers) => Set(PdkMethods.ResponseSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers, each with its values (a <see cref="KongMultiMap"/> fits).</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, string[]> headers) => Set(PdkMethods.ResponseSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers, each with its values.</summary>
    public ValueTask SetHeadersAsync(IReadOnlyDictionary<string, IReadOnlyList<string>> headers) => Set(PdkMethods.ResponseSetHeaders, new PdkArgs(value: headers));
    /// <summary>Sets several headers from a value that writes the name → value map itself.</summary>
    public ValueTask SetHeadersAsync(IPdkValue headers) => Set(PdkMethods.ResponseSetHeaders, new PdkArgs(value: headers));

    /// <summary>
    /// Ends the request with this response. Terminal: Kong never answers it, nothing more is sent for the
    /// event, and the handler should return (later PDK calls raise <see cref="KongExitedException"/>).
    /// Kong sends the body as it is: set Content-Type in <paramref name="headers"/>.
    /// </summary>
    public ValueTask ExitAsync(int status, ReadOnlyMemory<byte> body = default, IReadOnlyDictionary<string, string>? headers = null) =>
        Exit(status, body, headers);

    /// <summary><inheritdoc cref="ExitAsync(int, ReadOnlyMemory{byte}, IReadOnlyDictionary{string, string}?)"/> Headers with several values each.</summary>
    public ValueTask ExitAsync(int status, ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, IReadOnlyList<string>> headers) =>
        Exit(status, body, headers);

    public ValueTask ExitAsync(int status, string body, IReadOnlyDictionary<string, string>? headers = null) =>
        Exit(status, Encoding.UTF8.GetBytes(body), headers);

    public ValueTask ExitAsync(int status, string body, IReadOnlyDictionary<string, IReadOnlyList<string>> headers) =>
        Exit(status, Encoding.UTF8.GetBytes(body), headers);

    private ValueTask Exit(int status, ReadOnlyMemory<byte> body, object? headers)
    {
        if (status is < 100 or > 599) throw new ArgumentOutOfRangeException(nameof(status), "an HTTP status in 100..599");
        return Set(PdkMethods.ResponseExit, new PdkArgs(number: status, bytes: body, value: headers));
    }
}
