namespace Kong.PluginServer.Pdk;

/// <summary>kong.nginx.</summary>
public sealed class PdkNginx : PdkModule
{
    internal PdkNginx(PdkSession s) : base(s) { }

    public ValueTask<string> GetVarAsync(string name) => Call(PdkMethods.NginxGetVar, PdkArgs.Of(name), Decode.String);
    public ValueTask<string> GetTls1VersionStrAsync() => Call(PdkMethods.NginxGetTls1VersionStr, PdkArgs.None, Decode.String);
    public ValueTask SetCtxAsync(string key, object? value) => Set(PdkMethods.NginxSetCtx, PdkArgs.KV(key, value));
    public ValueTask<object?> GetCtxAsync(string key) => Call(PdkMethods.NginxGetCtx, PdkArgs.Of(key), Decode.Value);
    public ValueTask<double> ReqStartTimeAsync() => Call(PdkMethods.NginxReqStartTime, PdkArgs.None, Decode.Number);
    public ValueTask<string> GetSubsystemAsync() => Call(PdkMethods.NginxGetSubsystem, PdkArgs.None, Decode.String);
}
