using System.Collections.Concurrent;
using System.Globalization;
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
        var names = _names;
        for (int i = 0; i < names.Length; i++)
        {
            if ((ReferenceEquals(names[i], name) || string.Equals(names[i], name, StringComparison.Ordinal)) && _values[i].IsPresent)
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
            names.Add(p.Name);
            values.Add(v);
        }
        return new ClaimSet([.. names], [.. values]);
    }

    /// <summary>
    /// Builds the set keeping only <paramref name="retained"/> (the claims a route's config reads): the array is shared
    /// by every set built with it, so a cached token costs one value per retained claim.
    /// </summary>
    public static ClaimSet FromJson(JsonElement payload, RetainedClaims retained)
    {
        if (payload.ValueKind != JsonValueKind.Object)
            throw new FormatException("the token payload is not a JSON object");
        var names = retained.Names;
        var values = new ClaimValue[names.Length];
        for (int i = 0; i < names.Length; i++)
            if (payload.TryGetProperty(names[i], out var el)) values[i] = Read(el, names[i]);
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
                var s = Scalar(e);
                if (s is not null) items.Add(intern ? ClaimValuePool.Intern(s) : s);
            }
            return ClaimValue.FromArray(items.ToArray());
        }
        var single = Scalar(value);
        return single is null ? default : ClaimValue.FromString(intern ? ClaimValuePool.Intern(single) : single); // null: absent
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

/// <summary>The claim names a route keeps with its verified tokens, in one shared array.</summary>
public sealed class RetainedClaims(IEnumerable<string> names)
{
    public string[] Names { get; } = names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
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
