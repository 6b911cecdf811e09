using System.Globalization;
using System.Text.Json;

namespace GitLabCiAuth.Claims;

/// <summary>
/// The claims of a verified token, flattened once (at verification) into the string forms the policy
/// matches against: strings as they are, JSON booleans as "true"/"false", numbers in decimal, arrays
/// as their elements' forms (objects inside arrays as their JSON text). A JSON null counts as absent.
/// Immutable and shared: cached with the verified token and read by every request that reuses it.
/// </summary>
public sealed class ClaimSet
{
    private readonly Dictionary<string, ClaimValue> _claims;

    private ClaimSet(Dictionary<string, ClaimValue> claims) => _claims = claims;

    public int Count => _claims.Count;

    public IEnumerable<KeyValuePair<string, ClaimValue>> All => _claims;

    public bool TryGet(string name, out ClaimValue value) => _claims.TryGetValue(name, out value);

    /// <summary>The claim's single string form, or null when absent or an array.</summary>
    public string? GetString(string name) =>
        _claims.TryGetValue(name, out var v) && !v.IsArray ? v.Single : null;

    public static ClaimSet FromJson(ReadOnlySpan<byte> payloadUtf8)
    {
        using var doc = JsonDocument.Parse(payloadUtf8.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        return FromJson(doc.RootElement);
    }

    /// <summary>Builds the set from a JSON object (the token payload). Duplicate keys: the last wins.</summary>
    public static ClaimSet FromJson(JsonElement payload)
    {
        if (payload.ValueKind != JsonValueKind.Object)
            throw new FormatException("the token payload is not a JSON object");
        var claims = new Dictionary<string, ClaimValue>(StringComparer.Ordinal);
        foreach (var p in payload.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.Array)
            {
                var items = new List<string>(p.Value.GetArrayLength());
                foreach (var e in p.Value.EnumerateArray())
                {
                    var s = Scalar(e);
                    if (s is not null) items.Add(s);
                }
                claims[p.Name] = ClaimValue.FromArray(items.ToArray());
            }
            else
            {
                var s = Scalar(p.Value);
                if (s is null) claims.Remove(p.Name); // null: absent
                else claims[p.Name] = ClaimValue.FromString(s);
            }
        }
        return new ClaimSet(claims);
    }

    /// <summary>Builds a set from already-flattened values (tests, the check tool).</summary>
    public static ClaimSet FromValues(IEnumerable<KeyValuePair<string, ClaimValue>> values) =>
        new(new Dictionary<string, ClaimValue>(values, StringComparer.Ordinal));

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

    public override string ToString() => _items is null ? _single ?? "" : "[" + string.Join(",", _items) + "]";
}
