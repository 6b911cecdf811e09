using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kong.PluginServer.Testing.Internal;

// The simulator models Kong's Lua values as plain CLR objects:
//   nil -> null, boolean -> bool, number -> double (Lua numbers are doubles), string -> string
//   (or byte[] for a string holding raw bytes), sequence table -> List<object?>, hash table ->
//   Dictionary<string, object?>. CjsonNull stands for cjson.null / ngx.null (a userdata), and
//   MsgPackEmptyMap / MsgPackBin for the two packer overrides of Kong's mp_rpc.

/// <summary>A Lua error raised inside Kong (PDK argument or phase check, failed assert, encode error).</summary>
internal sealed class LuaError(string message) : Exception(message)
{
    /// <summary>
    /// Raised by get_instance_id's own <c>error(err)</c>, after it released its instance claim. Any other raise during a
    /// StartInstance (an <c>assert</c> inside Rpc:call: a failed send, a reply that does not decode, a wrong sequence)
    /// skips that cleanup: the claim stays and the worker's requests for the entity wait out the 10 s claim timeout.
    /// </summary>
    public bool ReleasesClaim { get; init; }
}

/// <summary>kong.response.exit: Kong yields the handler coroutine and never resumes it.</summary>
internal sealed class ExitSignal : Exception
{
    public static readonly ExitSignal Instance = new();
}

/// <summary>cjson.null / ngx.null.</summary>
internal sealed class CjsonNull
{
    public static readonly CjsonNull Instance = new();
    public override string ToString() => "userdata: NULL";
}

/// <summary>mp_rpc's forced empty map (an empty header/query map).</summary>
internal sealed class MsgPackEmptyMap
{
    public static readonly MsgPackEmptyMap Instance = new();
}

/// <summary>mp_rpc's raw body packer: the bytes are packed as msgpack bin.</summary>
internal sealed class MsgPackBin(byte[] bytes)
{
    public byte[] Bytes { get; } = bytes;
}

/// <summary>Two Lua return values (only RawBodyResult's wrapper looks at the second).</summary>
internal sealed class LuaMulti(object? first, object? second)
{
    public object? First { get; } = first;
    public object? Second { get; } = second;
}

/// <summary>Positional Lua arguments, inline for up to three.</summary>
internal readonly struct LuaArgs
{
    private readonly object? _a0, _a1, _a2;
    private readonly object?[]? _all;
    public int Count { get; }

    public LuaArgs(object? a0) { _a0 = a0; Count = 1; _a1 = _a2 = null; _all = null; }
    public LuaArgs(object? a0, object? a1) { _a0 = a0; _a1 = a1; Count = 2; _a2 = null; _all = null; }
    public LuaArgs(object? a0, object? a1, object? a2) { _a0 = a0; _a1 = a1; _a2 = a2; Count = 3; _all = null; }
    public LuaArgs(IReadOnlyList<object?> list)
    {
        _all = list.ToArray(); Count = _all.Length; _a0 = _a1 = _a2 = null;
    }

    public object? this[int i] => _all is not null
        ? (i < _all.Length ? _all[i] : null)
        : i switch { 0 => Count > 0 ? _a0 : null, 1 => Count > 1 ? _a1 : null, 2 => Count > 2 ? _a2 : null, _ => null };

    public static LuaArgs None => default;
}

internal static class Lua
{
    public static string TypeName(object? v) => v switch
    {
        null => "nil",
        bool => "boolean",
        double or int or long => "number",
        string or byte[] => "string",
        List<object?> or Dictionary<string, object?> or MsgPackEmptyMap => "table",
        _ => "userdata",
    };

    public static bool IsString(object? v) => v is string or byte[];
    public static bool IsTable(object? v) => v is List<object?> or Dictionary<string, object?> or MsgPackEmptyMap;

    public static string? AsString(object? v) => v switch
    {
        string s => s,
        byte[] b => Encoding.UTF8.GetString(b),
        _ => null,
    };

    public static byte[]? AsBytes(object? v) => v switch
    {
        string s => Encoding.UTF8.GetBytes(s),
        byte[] b => b,
        _ => null,
    };

    public static double? AsNumber(object? v) => v switch
    {
        double d => d,
        int i => i,
        long l => l,
        _ => null,
    };

    public static bool IsInteger(double d) => Math.Floor(d) == d && !double.IsInfinity(d);

    /// <summary>Lua's <c>tostring</c> (LuaJIT "%.14g" for numbers).</summary>
    public static string ToLuaString(object? v) => v switch
    {
        null => "nil",
        bool b => b ? "true" : "false",
        double d => FormatNumber(d),
        int i => i.ToString(CultureInfo.InvariantCulture),
        long l => l.ToString(CultureInfo.InvariantCulture),
        string s => s,
        byte[] b => Encoding.UTF8.GetString(b),
        CjsonNull => "userdata: NULL",
        _ => "table: 0x00000000",
    };

    /// <summary>C's "%.14g", as LuaJIT's tostring and lua-cjson use it.</summary>
    public static string FormatNumber(double d)
    {
        if (double.IsNaN(d)) return d < 0 ? "-nan" : "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (IsInteger(d) && Math.Abs(d) < 1e15) return ((long)d).ToString(CultureInfo.InvariantCulture);
        var s = d.ToString("G14", CultureInfo.InvariantCulture);
        return s.Replace('E', 'e');
    }

    public static bool Truthy(object? v) => v is not null && v is not false;

    /// <summary>Deep copy of a value tree (tables are copied, scalars shared).</summary>
    public static object? DeepCopy(object? v) => v switch
    {
        List<object?> l => l.Select(DeepCopy).ToList(),
        Dictionary<string, object?> d => d.ToDictionary(kv => kv.Key, kv => DeepCopy(kv.Value)),
        _ => v,
    };

    // ------------------------------------------------------------------ query strings (ngx.req.get_uri_args)

    /// <summary>Parses a raw query like ngx.req.get_uri_args: '+' is a space, percent-decoding, a value-less
    /// key is <c>true</c>, a repeated key becomes a list; at most <paramref name="max"/> arguments.</summary>
    public static Dictionary<string, object?> ParseQuery(string raw, int max)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(raw)) return result;
        int count = 0;
        foreach (var part in raw.Split('&'))
        {
            if (part.Length == 0) continue;
            if (count >= max) break;
            int eq = part.IndexOf('=');
            string key = Unescape(eq < 0 ? part : part[..eq]);
            if (key.Length == 0) continue;
            object val = eq < 0 ? true : Unescape(part[(eq + 1)..]);
            count++;
            if (result.TryGetValue(key, out var existing))
            {
                if (existing is List<object?> l) l.Add(val);
                else result[key] = new List<object?> { existing, val };
            }
            else result[key] = val;
        }
        return result;
    }

    private static string Unescape(string s)
    {
        s = s.Replace('+', ' ');
        if (s.IndexOf('%') < 0) return s;
        var bytes = new List<byte>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '%' && i + 2 < s.Length && IsHex(s[i + 1]) && IsHex(s[i + 2]))
            {
                bytes.Add((byte)Convert.ToInt32(s.Substring(i + 1, 2), 16));
                i += 2;
            }
            else bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');

    /// <summary>Kong's encode_args: keys sorted, <c>true</c> as a bare key, lists repeated, <c>false</c> dropped.</summary>
    public static string EncodeQuery(Dictionary<string, object?> args)
    {
        var sb = new StringBuilder();
        foreach (var key in args.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var v = args[key];
            IEnumerable<object?> values = v is List<object?> l ? l : new[] { v };
            foreach (var item in values)
            {
                if (item is false || item is null) continue;
                if (sb.Length > 0) sb.Append('&');
                sb.Append(Uri.EscapeDataString(key));
                if (item is true) continue;
                sb.Append('=').Append(Uri.EscapeDataString(ToLuaString(item)));
            }
        }
        return sb.ToString();
    }

    // ------------------------------------------------------------------ uuid

    public static bool IsUuid(string s) =>
        s.Length == 36 && Guid.TryParseExact(s, "D", out _);
}

/// <summary>lua-cjson as Kong uses it: decode JSON into Lua values, encode Lua values into JSON with cjson's
/// quirks (no spaces, '/' escaped as "\/", "%.14g" numbers, an empty table encoded as <c>{}</c>).</summary>
internal static class Cjson
{
    public static object? Decode(string json)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false });
        return FromElement(doc.RootElement);
    }

    public static object? FromElement(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal),
            (d, p) => { d[p.Name] = FromElement(p.Value); return d; }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromElement).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => CjsonNull.Instance,
    };

    public static string Encode(object? v, bool emptyArrayAsObject = true)
    {
        var sb = new StringBuilder();
        Write(sb, v, emptyArrayAsObject);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, bool emptyObj)
    {
        switch (v)
        {
            case null:
            case CjsonNull:
                sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case double or int or long: sb.Append(Lua.FormatNumber(Lua.AsNumber(v)!.Value)); break;
            case string s: WriteString(sb, s); break;
            case byte[] bytes: WriteString(sb, Encoding.UTF8.GetString(bytes)); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append(emptyObj ? "{}" : "[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    Write(sb, list[i], emptyObj);
                }
                sb.Append(']');
                break;
            case Dictionary<string, object?> map:
                sb.Append('{');
                bool first = true;
                foreach (var kv in map)
                {
                    if (kv.Value is null) continue; // a Lua nil is no key at all
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    Write(sb, kv.Value, emptyObj);
                }
                sb.Append('}');
                break;
            default:
                throw new LuaError("Cannot serialise " + Lua.TypeName(v) + ": type not supported");
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '/': sb.Append("\\/"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7f) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
