namespace Kong.PluginServer.Pdk;

/// <summary>kong.client: the downstream client, its consumer and credential.</summary>
public sealed class PdkClient : PdkModule
{
    internal PdkClient(PdkSession s) : base(s) { }

    public ValueTask<string> GetIpAsync() => Call(PdkMethods.ClientGetIp, PdkArgs.None, Decode.String);
    public ValueTask<string> GetForwardedIpAsync() => Call(PdkMethods.ClientGetForwardedIp, PdkArgs.None, Decode.String);
    public ValueTask<int> GetPortAsync() => Call(PdkMethods.ClientGetPort, PdkArgs.None, Decode.Int);
    public ValueTask<int> GetForwardedPortAsync() => Call(PdkMethods.ClientGetForwardedPort, PdkArgs.None, Decode.Int);
    public ValueTask<KongCredential?> GetCredentialAsync() => Call(PdkMethods.ClientGetCredential, PdkArgs.None, Decode.Credential);

    /// <summary>Loads a consumer by id (a UUID) or, with <paramref name="byUsername"/>, by username. Null when not found.
    /// Kong raises for a non-UUID id without byUsername; check the id first.</summary>
    public ValueTask<KongConsumer?> LoadConsumerAsync(string id, bool byUsername = false) =>
        Call(PdkMethods.ClientLoadConsumer, new PdkArgs(text: id, flag: byUsername), Decode.Consumer);

    public ValueTask<KongConsumer?> GetConsumerAsync() => Call(PdkMethods.ClientGetConsumer, PdkArgs.None, Decode.Consumer);

    /// <summary>Sets the authenticated consumer and/or credential (at least one). Pipelined.</summary>
    public ValueTask AuthenticateAsync(KongConsumer? consumer, KongCredential? credential)
    {
        if (consumer is null && credential is null)
            throw new ArgumentException("kong.client.authenticate needs a consumer or a credential");
        return Set(PdkMethods.ClientAuthenticate, new PdkArgs(value: consumer, value2: credential));
    }

    public ValueTask<string> GetProtocolAsync(bool allowTerminated = false) =>
        Call(PdkMethods.ClientGetProtocol, PdkArgs.Of(allowTerminated), Decode.String);
}
