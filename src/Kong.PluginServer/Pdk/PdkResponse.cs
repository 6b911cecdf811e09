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
    /// <summary>Headers as a name → value (string or string[]) map, or an <see cref="IPdkValue"/> writing a map.</summary>
    public ValueTask SetHeadersAsync(object headers) => Set(PdkMethods.ResponseSetHeaders, new PdkArgs(value: headers));

    /// <summary>
    /// Ends the request with this response. Terminal: Kong never answers it, nothing more is sent for the
    /// event, and the handler should return (later PDK calls raise <see cref="KongExitedException"/>).
    /// Kong sends the body as it is: set Content-Type in <paramref name="headers"/>.
    /// </summary>
    public ValueTask ExitAsync(int status, ReadOnlyMemory<byte> body = default, object? headers = null)
    {
        if (status is < 100 or > 599) throw new ArgumentOutOfRangeException(nameof(status), "an HTTP status in 100..599");
        return Set(PdkMethods.ResponseExit, new PdkArgs(number: status, bytes: body, value: headers));
    }

    public ValueTask ExitAsync(int status, string body, object? headers = null) =>
        ExitAsync(status, Encoding.UTF8.GetBytes(body), headers);
}
