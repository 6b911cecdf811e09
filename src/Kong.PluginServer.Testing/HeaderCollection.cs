using System.Collections;

namespace Kong.PluginServer.Testing;

/// <summary>
/// An ordered, case-insensitive, multi-valued HTTP header collection (request, upstream or response headers).
/// The indexer reads the first value and replaces every value on set (<c>null</c> removes the header);
/// <see cref="Add(string, string)"/> appends. Initializers: <c>Headers = { ["authorization"] = "Bearer x" }</c>, or, for
/// repeated headers, <c>Headers = { { "x-tag", "a" }, { "x-tag", "b" } }</c> (C# does not mix the two forms).
/// </summary>
public sealed class HeaderCollection : IEnumerable<KeyValuePair<string, string>>
{
    private readonly List<KeyValuePair<string, string>> _entries = new();

    /// <summary>The number of header lines (a header with two values counts twice).</summary>
    public int Count => _entries.Count;

    /// <summary>First value of <paramref name="name"/> (case-insensitive), or <c>null</c>; setting replaces all values, <c>null</c> removes.</summary>
    public string? this[string name]
    {
        get
        {
            foreach (var e in _entries)
                if (string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase)) return e.Value;
            return null;
        }
        set
        {
            int at = IndexOf(name);
            Remove(name);
            if (value is null) return;
            var kv = new KeyValuePair<string, string>(name, value);
            if (at < 0 || at > _entries.Count) _entries.Add(kv); else _entries.Insert(at, kv);
        }
    }

    /// <summary>Appends one header line.</summary>
    public void Add(string name, string value) => _entries.Add(new(name, value));

    /// <summary>Replaces all values of <paramref name="name"/> with <paramref name="values"/>.</summary>
    public void Set(string name, IEnumerable<string> values)
    {
        int at = IndexOf(name);
        Remove(name);
        if (at < 0 || at > _entries.Count) at = _entries.Count;
        foreach (var v in values) _entries.Insert(at++, new(name, v));
    }

    /// <summary>Removes every value of <paramref name="name"/>; true when something was removed.</summary>
    public bool Remove(string name) => _entries.RemoveAll(e => string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase)) > 0;

    /// <summary>True when the header is present.</summary>
    public bool Contains(string name) => IndexOf(name) >= 0;

    /// <summary>All values of <paramref name="name"/>, in order.</summary>
    public IReadOnlyList<string> GetValues(string name)
    {
        var list = new List<string>();
        foreach (var e in _entries)
            if (string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase)) list.Add(e.Value);
        return list;
    }

    /// <summary>Distinct header names (first spelling seen), in order.</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var list = new List<string>();
            foreach (var e in _entries) if (seen.Add(e.Key)) list.Add(e.Key);
            return list;
        }
    }

    /// <summary>Removes everything.</summary>
    public void Clear() => _entries.Clear();

    /// <summary>A deep copy.</summary>
    public HeaderCollection Clone()
    {
        var c = new HeaderCollection();
        c._entries.AddRange(_entries);
        return c;
    }

    private int IndexOf(string name)
    {
        for (int i = 0; i < _entries.Count; i++)
            if (string.Equals(_entries[i].Key, name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => _entries.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => string.Join("; ", _entries.Select(e => e.Key + ": " + e.Value));
}
