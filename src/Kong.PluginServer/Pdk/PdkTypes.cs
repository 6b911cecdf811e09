namespace Kong.PluginServer.Pdk;

/// <summary>A Kong Consumer (kong.client.get_consumer / load_consumer).</summary>
public sealed record KongConsumer(string Id, string? Username = null, string? CustomId = null, long CreatedAt = 0, IReadOnlyList<string>? Tags = null);

/// <summary>The authenticated credential (kong.client.get_credential / authenticate).</summary>
public sealed record KongCredential(string Id, string? ConsumerId = null);

/// <summary>The matched Route (kong.router.get_route).</summary>
public sealed record KongRoute(string Id, string Name, long CreatedAt, long UpdatedAt, IReadOnlyList<string> Protocols,
    IReadOnlyList<string> Methods, IReadOnlyList<string> Hosts, IReadOnlyList<string> Paths, IReadOnlyList<string> Tags,
    bool StripPath, bool PreserveHost, int RegexPriority, int HttpsRedirectStatusCode, string? ServiceId);

/// <summary>The matched Service (kong.router.get_service).</summary>
public sealed record KongService(string Id, string Name, long CreatedAt, long UpdatedAt, string Protocol, string Host, int Port,
    string Path, int Retries, int ConnectTimeout, int WriteTimeout, int ReadTimeout, IReadOnlyList<string> Tags);

/// <summary>kong.node.get_memory_stats.</summary>
public sealed record KongMemoryStats(long KongSlabs, long KongCapacity, long DbCacheSlabs, long DbCacheCapacity,
    IReadOnlyList<(long Pid, long HttpAllocatedGc)> Workers);

/// <summary>kong.request.get_raw_body: the body in memory, or the path of nginx's temp file, or an error.</summary>
public sealed record KongRawBody(byte[]? Content, string? FilePath, string? Error);

/// <summary>kong.request.get_uri_captures (Kong 3.1+).</summary>
public sealed record KongUriCaptures(IReadOnlyList<byte[]> Unnamed, IReadOnlyDictionary<string, byte[]> Named);

/// <summary>
/// Header or query maps as Kong returns them: lower-case names (headers), each with one or more values.
/// A query flag without a value (<c>?debug</c>) has no values.
/// </summary>
public sealed class KongMultiMap : Dictionary<string, string[]>
{
    public KongMultiMap() : base(StringComparer.OrdinalIgnoreCase) { }

    /// <summary>The first value, or null when absent.</summary>
    public string? First(string name) => TryGetValue(name, out var v) && v.Length > 0 ? v[0] : null;
}
