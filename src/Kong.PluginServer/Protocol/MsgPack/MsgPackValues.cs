using System.Text;
using Kong.PluginServer.Framing;
using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>Reads msgpack into plain values: null, string, long, double, bool, byte[] (bin), List, Dictionary.</summary>
internal static class MsgPackValues
{
    private const int MaxDepth = 64;

    public static object? Read(ref MessagePackReader r, int depth = 0)
    {
        if (depth > MaxDepth) throw new ProtocolViolationException("msgpack value nested too deeply");
        switch (r.NextMessagePackType)
        {
            case MessagePackType.Nil: r.ReadNil(); return null;
            case MessagePackType.Boolean: return r.ReadBoolean();
            case MessagePackType.Integer:
                return r.NextCode == MessagePackCode.UInt64 ? (object)(double)r.ReadUInt64() : r.ReadInt64();
            case MessagePackType.Float: return r.ReadDouble();
            case MessagePackType.String: return r.ReadString();
            case MessagePackType.Binary:
            {
                var seq = r.ReadBytes();
                return seq is null ? null : System.Buffers.BuffersExtensions.ToArray(seq.Value);
            }
            case MessagePackType.Array:
            {
                int n = r.ReadArrayHeader();
                var list = new List<object?>(Math.Min(n, 1024));
                for (int i = 0; i < n; i++) list.Add(Read(ref r, depth + 1));
                return list;
            }
            case MessagePackType.Map:
            {
                int n = r.ReadMapHeader();
                var map = new Dictionary<string, object?>(Math.Min(n, 1024), StringComparer.Ordinal);
                for (int i = 0; i < n; i++)
                {
                    var key = Read(ref r, depth + 1);
                    map[key switch { string s => s, byte[] b => Encoding.UTF8.GetString(b), _ => Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture) ?? "" }] = Read(ref r, depth + 1);
                }
                return map;
            }
            default:
                r.Skip();
                return null;
        }
    }

    public static string? AsString(object? v) => v switch
    {
        null => null,
        string s => s,
        byte[] b => Encoding.UTF8.GetString(b),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture),
    };

    public static long AsLong(object? v) => v switch
    {
        long l => l,
        double d => (long)d,
        string s when long.TryParse(s, out var l) => l,
        _ => 0,
    };

    public static double AsDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        _ => 0,
    };

    public static IReadOnlyList<string> AsStrings(object? v) => v switch
    {
        List<object?> l => l.Select(x => AsString(x) ?? "").ToArray(),
        string s => [s],
        _ => [],
    };
}
