using System.Text;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>Decodes google.protobuf.Value/Struct/ListValue as Kong encodes them (null_value = 1 included).</summary>
internal static class ProtoValues
{
    private const int MaxDepth = 64;

    /// <summary>Value → null, string, double, bool, Dictionary&lt;string, object?&gt; or List&lt;object?&gt;.</summary>
    public static object? ReadValue(ReadOnlySpan<byte> value, int depth)
    {
        if (depth > MaxDepth) throw new ProtocolViolationException("value nested too deeply");
        var r = new ProtoReader(value);
        object? result = null;
        while (r.Next(out int f, out int wt))
        {
            switch (f)
            {
                case 1 when wt == 0: r.Varint(); result = null; break;            // null_value (0 or Kong's 1)
                case 2 when wt == 1: result = r.Fixed64Double(); break;
                case 3 when wt == 2: result = Encoding.UTF8.GetString(r.LengthDelimited()); break;
                case 4 when wt == 0: result = r.Varint() != 0; break;
                case 5 when wt == 2: result = ReadStruct(r.LengthDelimited(), depth + 1); break;
                case 6 when wt == 2: result = ReadList(r.LengthDelimited(), depth + 1); break;
                default: r.Skip(wt); break;
            }
        }
        return result;
    }

    public static Dictionary<string, object?> ReadStruct(ReadOnlySpan<byte> body, int depth)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        var r = new ProtoReader(body);
        while (r.Next(out int f, out int wt))
        {
            if (f != 1 || wt != 2) { r.Skip(wt); continue; }
            ReadEntry(r.LengthDelimited(), out var key, out var valueBytes);
            map[key] = ReadValue(valueBytes, depth + 1);
        }
        return map;
    }

    public static List<object?> ReadList(ReadOnlySpan<byte> body, int depth)
    {
        var list = new List<object?>();
        var r = new ProtoReader(body);
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 2) list.Add(ReadValue(r.LengthDelimited(), depth + 1));
            else r.Skip(wt);
        }
        return list;
    }

    /// <summary>A Struct of header/query values: string → [s]; list → strings; bool true (a flag) → [].</summary>
    public static KongMultiMap ReadMultiMap(ReadOnlySpan<byte> body)
    {
        var map = new KongMultiMap();
        var r = new ProtoReader(body);
        while (r.Next(out int f, out int wt))
        {
            if (f != 1 || wt != 2) { r.Skip(wt); continue; }
            ReadEntry(r.LengthDelimited(), out var key, out var valueBytes);
            map[key] = ReadValue(valueBytes, 1) switch
            {
                string s => [s],
                List<object?> l => l.Select(x => x switch { string s => s, null => "", _ => Convert.ToString(x, System.Globalization.CultureInfo.InvariantCulture) ?? "" }).ToArray(),
                double d => [d.ToString(System.Globalization.CultureInfo.InvariantCulture)],
                _ => [],
            };
        }
        return map;
    }

    private static void ReadEntry(ReadOnlySpan<byte> entry, out string key, out ReadOnlySpan<byte> value)
    {
        key = "";
        value = default;
        var r = new ProtoReader(entry);
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 2) key = Encoding.UTF8.GetString(r.LengthDelimited());
            else if (f == 2 && wt == 2) value = r.LengthDelimited();
            else r.Skip(wt);
        }
    }
}
