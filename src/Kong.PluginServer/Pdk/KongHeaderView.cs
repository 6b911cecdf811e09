using System.Text;

namespace Kong.PluginServer.Pdk;

/// <summary>
/// kong.request.get_headers without building a dictionary: the raw reply, kept for the event, searched
/// by name or walked entry by entry on demand (case-insensitive ASCII). For the hot path, where a plugin needs
/// one or two headers and must still see every value (two Authorization headers are not one).
/// <para>
/// Kong's get_headers stops at its <c>max_headers</c> argument: when <see cref="Lines"/> reaches the limit the
/// plugin asked for, headers after it are not in the view.
/// </para>
/// </summary>
public readonly struct KongHeaderView
{
    private readonly PdkCodec? _codec;
    private readonly ReadOnlyMemory<byte> _raw;

    internal KongHeaderView(PdkCodec codec, ReadOnlyMemory<byte> raw) { _codec = codec; _raw = raw; }

    /// <summary>Number of values of the header (0 when absent).</summary>
    public int Count(string name) => Find(name, out _);

    /// <summary>The first value's bytes (empty when absent), valid until the event ends.</summary>
    public ReadOnlySpan<byte> First(string name)
    {
        Find(name, out var first);
        return first;
    }

    public bool Contains(string name) => Count(name) > 0;

    /// <summary>Header lines in the view: every value of every header (a header sent twice counts twice).</summary>
    public int Lines
    {
        get
        {
            int n = 0;
            foreach (var h in this) n += h.ValueCount;
            return n;
        }
    }

    /// <summary>Walks the headers in the reply's order, without allocating.</summary>
    public Enumerator GetEnumerator() => new(_codec, _raw);

    /// <summary>Decodes everything (allocates): for logging and tests.</summary>
    public KongMultiMap ToMultiMap() => _codec is null ? new KongMultiMap() : _codec.ReadMultiMap(_raw);

    private int Find(string name, out ReadOnlySpan<byte> first)
    {
        first = default;
        Span<byte> buffer = stackalloc byte[Math.Min(256, Encoding.UTF8.GetMaxByteCount(name.Length))];
        var lower = Lower(name, buffer);
        foreach (var h in this)
        {
            if (!NameEquals(h.Name, lower)) continue;
            first = h.First;
            return h.ValueCount;
        }
        return 0;
    }

    private static ReadOnlySpan<byte> Lower(string name, Span<byte> buffer)
    {
        if (name.Length > buffer.Length) return Encoding.ASCII.GetBytes(name.ToLowerInvariant());
        int n = 0;
        foreach (char c in name) buffer[n++] = (byte)(c is >= 'A' and <= 'Z' ? c + 32 : c);
        return buffer[..n];
    }

    /// <summary>ASCII case-insensitive comparison of a header name against a lower-case name.</summary>
    public static bool NameEquals(ReadOnlySpan<byte> candidate, ReadOnlySpan<byte> lower)
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

    /// <summary>One header of the view: its name as Kong sent it, its number of values and the first value.</summary>
    public readonly ref struct Entry(ReadOnlySpan<byte> name, int valueCount, ReadOnlySpan<byte> first)
    {
        public ReadOnlySpan<byte> Name { get; } = name;
        public int ValueCount { get; } = valueCount;
        public ReadOnlySpan<byte> First { get; } = first;
    }

    public ref struct Enumerator
    {
        private readonly PdkCodec? _codec;
        private readonly ReadOnlyMemory<byte> _raw;
        private int _offset;
        private Entry _current;

        internal Enumerator(PdkCodec? codec, ReadOnlyMemory<byte> raw) { _codec = codec; _raw = raw; _offset = 0; _current = default; }

        public readonly Entry Current => _current;

        public bool MoveNext()
        {
            if (_codec is null || !_codec.NextHeader(_raw, ref _offset, out var name, out int count, out var first)) return false;
            _current = new Entry(name, count, first);
            return true;
        }
    }
}
