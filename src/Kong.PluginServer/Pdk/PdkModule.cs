namespace Kong.PluginServer.Pdk;

/// <summary>Base of the PDK area modules: how a typed call becomes a queued step.</summary>
public abstract class PdkModule
{
    private protected PdkModule(PdkSession session) => Session = session;

    private protected PdkSession Session { get; }

    private protected ValueTask<T> Call<T>(PdkMethod method, in PdkArgs args, ReplyDecoder<T> decode)
    {
        var pending = PendingCall<T>.Rent(Session, decode);
        Session.Send(method, args, pending);
        Session.UnawaitedResults++;
        return pending.Task;
    }

    /// <summary>A call whose result is empty: queued and pipelined; the returned task is already complete.</summary>
    private protected ValueTask Set(PdkMethod method, in PdkArgs args)
    {
        Session.Send(method, args, null);
        return ValueTask.CompletedTask;
    }
}

/// <summary>The reply decoders, cached as static delegates.</summary>
internal static class Decode
{
    public static readonly ReplyDecoder<string> String = static (c, r, _) => c.ReadString(r);
    public static readonly ReplyDecoder<ReadOnlyMemory<byte>> Utf8 = static (c, r, s) => s.Keep(c.ReadUtf8(r));
    public static readonly ReplyDecoder<int> Int = static (c, r, _) => (int)c.ReadInt(r);
    public static readonly ReplyDecoder<double> Number = static (c, r, _) => c.ReadNumber(r);
    public static readonly ReplyDecoder<bool> Bool = static (c, r, _) => c.ReadBool(r);
    public static readonly ReplyDecoder<object?> Value = static (c, r, _) => c.ReadValue(r);
    public static readonly ReplyDecoder<KongHeaderView> HeaderView = static (c, r, s) => new KongHeaderView(c, s.Keep(r.Span));
    public static readonly ReplyDecoder<KongMultiMap> MultiMap = static (c, r, _) => c.ReadMultiMap(r);
    public static readonly ReplyDecoder<KongConsumer?> Consumer = static (c, r, _) => c.ReadConsumer(r);
    public static readonly ReplyDecoder<KongCredential?> Credential = static (c, r, _) => c.ReadCredential(r);
    public static readonly ReplyDecoder<KongRoute?> Route = static (c, r, _) => c.ReadRoute(r);
    public static readonly ReplyDecoder<KongService?> Service = static (c, r, _) => c.ReadService(r);
    public static readonly ReplyDecoder<KongMemoryStats> MemoryStats = static (c, r, _) => c.ReadMemoryStats(r);
    public static readonly ReplyDecoder<KongRawBody> RawBody = static (c, r, _) => c.ReadRawBody(r);
    public static readonly ReplyDecoder<KongUriCaptures> UriCaptures = static (c, r, _) => c.ReadUriCaptures(r);
    public static readonly ReplyDecoder<byte[]> Bytes = static (c, r, _) => c.ReadBytes(r);
}
