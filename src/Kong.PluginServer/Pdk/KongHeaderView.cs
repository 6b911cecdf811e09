using System.Text;

namespace Kong.PluginServer.Pdk;

/// <summary>
/// kong.request.get_headers without building a dictionary: the raw reply, kept for the event, searched
/// by name on demand (case-insensitive ASCII). For the hot path, where a plugin needs one or two headers
/// and must still see every value (two Authorization headers are not one).
/// </summary>
public readonly struct KongHeaderView
{
    private readonly PdkCodec? _codec;
    private readonly ReadOnlyMemory<byte> _raw;

    internal KongHeaderView(PdkCodec codec, ReadOnlyMemory<byte> raw) { _codec = codec; _raw = raw; }

    /// <summary>Number of values of the header (0 when absent).</summary>
    public int Count(string name)
    {
        if (_codec is null) return 0;
        Span<byte> lower = stackalloc byte[Math.Min(256, Encoding.UTF8.GetMaxByteCount(name.Length))];
        return _codec.FindHeader(_raw, Lower(name, lower), out _);
    }

    /// <summary>The first value's bytes (empty when absent), valid until the event ends.</summary>
    public ReadOnlySpan<byte> First(string name)
    {
        if (_codec is null) return default;
        Span<byte> lower = stackalloc byte[Math.Min(256, Encoding.UTF8.GetMaxByteCount(name.Length))];
        _codec.FindHeader(_raw, Lower(name, lower), out var first);
        return first;
    }

    public bool Contains(string name) => Count(name) > 0;

    /// <summary>Decodes everything (allocates): for logging and tests.</summary>
    public KongMultiMap ToMultiMap() => _codec is null ? new KongMultiMap() : _codec.ReadMultiMap(_raw);

    private static ReadOnlySpan<byte> Lower(string name, Span<byte> buffer)
    {
        if (name.Length > buffer.Length) return Encoding.ASCII.GetBytes(name.ToLowerInvariant());
        int n = 0;
        foreach (char c in name) buffer[n++] = (byte)(c is >= 'A' and <= 'Z' ? c + 32 : c);
        return buffer[..n];
    }

    /// <summary>ASCII case-insensitive comparison of a header name against a lower-case name.</summary>
    internal static bool NameEquals(ReadOnlySpan<byte> candidate, ReadOnlySpan<byte> lower)
    {
        if (candidate.Length != lower.Length) return false;
        for (int i = 0; i < candidate.Length; i++)
        {
            byte c = candidate[i];
            if (c is >= (byte)'A' and <= (byte)'Z') c += 32;
            if (c != lower[i]) return false;
        }
        return true;
    }
}
