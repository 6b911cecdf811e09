using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace GitLabCiAuth.Claims;

/// <summary>
/// The claims of a verified token, flattened once (at verification) into the string forms the policy
/// matches against: strings as they are, JSON booleans as "true"/"false", numbers in decimal, arrays
/// as their elements' forms (objects inside arrays as their JSON text). A JSON null counts as absent.
/// Immutable and shared: cached with the verified token and read by every request that reuses it.
/// <para>
/// Compact by design, since thousands live in the verified-token cache: a name array (shared by every token of a
/// route when built with the route's retained names) and a parallel value array, with values that repeat across
/// jobs (<c>ref</c>, paths, ids of projects and runners...) interned in a bounded process-wide pool.
/// </para>
/// </summary>
public sealed class ClaimSet
{
    private readonly string[] _names;
    private readonly ClaimValue[] _values; // parallel to _names; default = absent

    private ClaimSet(string[] names, ClaimValue[] values) { _names = names; _values = values; }

    public int Count
    {
        get
        {
            int n = 0;
            foreach (var v in _values) if (v.IsPresent) n++;
            return n;
        }
    }

    public IEnumerable<KeyValuePair<string, ClaimValue>> All
    {
        get
        {
            for (int i = 0; i < _names.Length; i++)
                if (_values[i].IsPresent) yield return new(_names[i], _values[i]);
        }
    }

    public bool TryGet(string name, out ClaimValue value)
    {
        // names compiled from a config are ClaimNames' instances, as the retained names are: found by reference first
        var names = _names;
        for (int i = 0; i < names.Length; i++)
        {
            if (ReferenceEquals(names[i], name) && _values[i].IsPresent)
            {
                value = _values[i];
                return true;
            }
        }
        for (int i = 0; i < names.Length; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal) && _values[i].IsPresent)
            {
                value = _values[i];
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>The claim's single string form, or null when absent or an array.</summary>
    public string? GetString(string name) => TryGet(name, out var v) && !v.IsArray ? v.Single : null;

    public static ClaimSet FromJson(ReadOnlySpan<byte> payloadUtf8)
    {
        using var doc = JsonDocument.Parse(payloadUtf8.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        return FromJson(doc.RootElement);
    }

    /// <summary>Builds the set from a JSON object (the token payload), keeping every claim. Duplicate keys: the last wins.</summary>
    public static ClaimSet FromJson(JsonElement payload)
    {
        if (payload.ValueKind != JsonValueKind.Object)
            throw new FormatException("the token payload is not a JSON object");
        var names = new List<string>();
        var values = new List<ClaimValue>();
        foreach (var p in payload.EnumerateObject())
        {
            var v = Read(p.Value, p.Name);
            int at = names.IndexOf(p.Name);
            if (at >= 0) { values[at] = v; continue; }
            names.Add(ClaimNames.IfKnown(p.Name));
            values.Add(v);
        }
        return new ClaimSet([.. names], [.. values]);
    }

    /// <summary>
    /// Builds the set keeping only <paramref name="retained"/> (the claims a route's config reads): the array is shared
    /// by every set built with it, so a cached token costs one value per retained claim. One pass over the payload's
    /// members, matched by their UTF-8 names; a repeated name: the last wins.
    /// </summary>
    public static ClaimSet FromJson(JsonElement payload, RetainedClaims retained)
    {
        if (payload.ValueKind != JsonValueKind.Object)
            throw new FormatException("the token payload is not a JSON object");
        var names = retained.Names;
        var values = new ClaimValue[names.Length];
        foreach (var p in payload.EnumerateObject())
        {
            int slot = retained.IndexOf(p);
            if (slot >= 0) values[slot] = Read(p.Value, names[slot]);
        }
        return new ClaimSet(names, values);
    }

    /// <summary>Builds a set from already-flattened values (tests, the check tool).</summary>
    public static ClaimSet FromValues(IEnumerable<KeyValuePair<string, ClaimValue>> values)
    {
        var list = values.ToList();
        return new ClaimSet(list.Select(kv => kv.Key).ToArray(), list.Select(kv => kv.Value).ToArray());
    }

    private static ClaimValue Read(JsonElement value, string name)
    {
        bool intern = !ClaimValuePool.UniquePerJob.Contains(name);
        if (value.ValueKind == JsonValueKind.Array)
        {
            var items = new List<string>(value.GetArrayLength());
            foreach (var e in value.EnumerateArray())
            {
                var s = intern ? InternedScalar(e) : Scalar(e);
                if (s is not null) items.Add(s);
            }
            return ClaimValue.FromArray(items.ToArray());
        }
        var single = intern ? InternedScalar(value) : Scalar(value);
        return single is null ? default : ClaimValue.FromString(single); // null: absent
    }

    /// <summary><see cref="Scalar"/>, shared through the pool; a string already pooled is found from the token's bytes without a copy.</summary>
    private static string? InternedScalar(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String && ClaimValuePool.TryFind(JsonMarshal.GetRawUtf8Value(e), out var pooled)) return pooled;
        var s = Scalar(e);
        return s is null ? null : ClaimValuePool.Intern(s);
    }

    private static string? Scalar(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l.ToString(CultureInfo.InvariantCulture)
            : e.GetDouble().ToString("R", CultureInfo.InvariantCulture),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => e.GetRawText(), // objects (and arrays nested in arrays) as JSON text
    };
}

/// <summary>The claim names a route keeps with its verified tokens, in one shared array, and their lookup by a token's UTF-8 member name.</summary>
public sealed class RetainedClaims
{
    private readonly byte[][] _utf8;            // parallel to Names
    private readonly int[][] _byLength;         // slots of the names of each UTF-8 length (up to MaxIndexedLength)
    private const int MaxIndexedLength = 64;

    public RetainedClaims(IEnumerable<string> names)
    {
        Names = ClaimNames.Canonical(names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        _utf8 = Names.Select(n => Encoding.UTF8.GetBytes(n)).ToArray();
        _byLength = new int[MaxIndexedLength + 1][];
        for (int len = 0; len <= MaxIndexedLength; len++)
            _byLength[len] = Enumerable.Range(0, Names.Length).Where(i => _utf8[i].Length == len).ToArray();
    }

    public string[] Names { get; }

    /// <summary>The slot of a payload member's name in <see cref="Names"/>, or -1 when the route does not read it.</summary>
    internal int IndexOf(JsonProperty member)
    {
        var raw = JsonMarshal.GetRawUtf8PropertyName(member);
        if (raw.IndexOf((byte)'\\') >= 0) return Array.IndexOf(Names, member.Name); // escaped in the JSON: compare the decoded name
        if (raw.Length <= MaxIndexedLength)
        {
            foreach (int i in _byLength[raw.Length])
                if (raw.SequenceEqual(_utf8[i])) return i;
            return -1;
        }
        for (int i = 0; i < _utf8.Length; i++)
            if (raw.SequenceEqual(_utf8[i])) return i;
        return -1;
    }
}

/// <summary>
/// Process-wide interning of claim values that repeat across jobs, so thousands of cached tokens of the same few
/// projects share one copy of each path, ref and id. Bounded: once full, values are kept as they are.
/// </summary>
internal static class ClaimValuePool
{
    private const int MaxEntries = 65_536;
    private const int MaxLength = 256;
    private static readonly ConcurrentDictionary<string, string> s_pool = new(StringComparer.Ordinal);

    /// <summary>Claims whose value is new for every job or token: interning them would only fill the pool.</summary>
    public static readonly HashSet<string> UniquePerJob = new(StringComparer.Ordinal)
        { "jti", "job_id", "pipeline_id", "sha", "ci_config_sha", "exp", "iat", "nbf" };

    private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> s_byChars =
        s_pool.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>
    /// The pooled string whose JSON form is <paramref name="rawJson"/> (a string token with its quotes, as the token
    /// has it), without allocating. False when it is not pooled yet, or is escaped in the JSON (the caller decodes it).
    /// </summary>
    public static bool TryFind(ReadOnlySpan<byte> rawJson, out string value)
    {
        value = null!;
        if (rawJson.Length < 2 || rawJson.Length - 2 > MaxLength) return false;
        var utf8 = rawJson[1..^1];
        if (utf8.IndexOf((byte)'\\') >= 0) return false;
        Span<char> chars = stackalloc char[MaxLength];
        if (!Encoding.UTF8.TryGetChars(utf8, chars, out int n)) return false;
        return s_byChars.TryGetValue(chars[..n], out value!);
    }

    public static string Intern(string value)
    {
        if (value.Length > MaxLength) return value;
        if (s_pool.TryGetValue(value, out var shared)) return shared;
        if (s_pool.Count >= MaxEntries) return value;
        return s_pool.GetOrAdd(value, value);
    }
}

/// <summary>A claim's value: one string, or the elements of a JSON array.</summary>
public readonly struct ClaimValue
{
    private readonly string? _single;
    private readonly string[]? _items;

    private ClaimValue(string? single, string[]? items) { _single = single; _items = items; }

    public static ClaimValue FromString(string value) => new(value, null);
    public static ClaimValue FromArray(string[] items) => new(null, items);

    public bool IsArray => _items is not null;
    public string? Single => _single;
    public ReadOnlySpan<string> Items => _items is null ? default : _items;

    internal bool IsPresent => _single is not null || _items is not null;

    public override string ToString() => _items is null ? _single ?? "" : "[" + string.Join(",", _items) + "]";
}
