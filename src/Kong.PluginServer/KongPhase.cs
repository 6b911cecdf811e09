namespace Kong.PluginServer;

/// <summary>The request phases an external plugin can run in (docs/protocol.md#phases). header_filter and body_filter cannot be served.</summary>
[Flags]
public enum KongPhase
{
    None = 0,
    Certificate = 1,
    Rewrite = 2,
    Access = 4,
    Response = 8,
    Preread = 16,
    Log = 32,
}

public static class KongPhases
{
    public static readonly KongPhase[] All =
        [KongPhase.Certificate, KongPhase.Rewrite, KongPhase.Access, KongPhase.Response, KongPhase.Preread, KongPhase.Log];

    public static string Name(KongPhase p) => p switch
    {
        KongPhase.Certificate => "certificate",
        KongPhase.Rewrite => "rewrite",
        KongPhase.Access => "access",
        KongPhase.Response => "response",
        KongPhase.Preread => "preread",
        KongPhase.Log => "log",
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>Parses an event name from the wire without allocating; None when unknown.</summary>
    public static KongPhase Parse(ReadOnlySpan<byte> name) => name switch
    {
        _ when name.SequenceEqual("access"u8) => KongPhase.Access,
        _ when name.SequenceEqual("log"u8) => KongPhase.Log,
        _ when name.SequenceEqual("rewrite"u8) => KongPhase.Rewrite,
        _ when name.SequenceEqual("response"u8) => KongPhase.Response,
        _ when name.SequenceEqual("certificate"u8) => KongPhase.Certificate,
        _ when name.SequenceEqual("preread"u8) => KongPhase.Preread,
        _ => KongPhase.None,
    };

    public static KongPhase Parse(string name) => Parse(System.Text.Encoding.UTF8.GetBytes(name));

    /// <summary>Phases in which Kong lets a plugin end the request with kong.response.exit.</summary>
    public static bool CanExit(KongPhase p) => p is KongPhase.Rewrite or KongPhase.Access or KongPhase.Response or KongPhase.Preread;
}
