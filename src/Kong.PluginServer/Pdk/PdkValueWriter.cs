using System.Collections;
using System.Text;

namespace Kong.PluginServer.Pdk;

/// <summary>
/// A value that writes itself into a PDK argument without building an object tree first (the hot path:
/// log records, identity header sets). The same code serves both protocols.
/// </summary>
public interface IPdkValue
{
    void WriteTo(PdkValueWriter writer);
}

/// <summary>
/// Writes a JSON-like value (null, string, number, bool, map, list) into a PDK argument in the
/// connection's protocol. Maps and lists announce their element count first (MsgPack needs it).
/// Kong quirks (docs/protocol.md#value-unwrap): over ProtoBuf:1 a <c>false</c> or a null arrives in Lua as nil.
/// </summary>
public abstract class PdkValueWriter
{
    public abstract void Null();
    public abstract void String(string value);
    public abstract void String(ReadOnlySpan<byte> utf8);
    public abstract void Number(double value);
    public abstract void Integer(long value);
    public abstract void Bool(bool value);
    public abstract void BeginMap(int count);
    public abstract void Key(string name);
    public abstract void EndMap();
    public abstract void BeginList(int count);
    public abstract void EndList();

    /// <summary>Writes a plain object tree: null, string, bool, integers, floating point, byte[], IPdkValue,
    /// string maps, object maps, string lists, object lists.</summary>
    public void Object(object? value)
    {
        switch (value)
        {
            case null: Null(); break;
            case string s: String(s); break;
            case bool b: Bool(b); break;
            case int i: Integer(i); break;
            case long l: Integer(l); break;
            case double d: Number(d); break;
            case float f: Number(f); break;
            case decimal m: Number((double)m); break;
            case byte[] bytes: String(bytes); break;
            case ReadOnlyMemory<byte> mem: String(mem.Span); break;
            case IPdkValue v: v.WriteTo(this); break;
            case IReadOnlyDictionary<string, string> sm:
                BeginMap(sm.Count);
                foreach (var kv in sm) { Key(kv.Key); String(kv.Value); }
                EndMap();
                break;
            case IReadOnlyDictionary<string, string[]> mm:
                BeginMap(mm.Count);
                foreach (var kv in mm) { Key(kv.Key); StringList(kv.Value); }
                EndMap();
                break;
            case IReadOnlyDictionary<string, IReadOnlyList<string>> lm:
                BeginMap(lm.Count);
                foreach (var kv in lm) { Key(kv.Key); StringList(kv.Value); }
                EndMap();
                break;
            case IReadOnlyDictionary<string, object?> om:
                BeginMap(om.Count);
                foreach (var kv in om) { Key(kv.Key); Object(kv.Value); }
                EndMap();
                break;
            case IDictionary d:
                BeginMap(d.Count);
                foreach (DictionaryEntry e in d) { Key(Convert.ToString(e.Key, System.Globalization.CultureInfo.InvariantCulture) ?? ""); Object(e.Value); }
                EndMap();
                break;
            case string[] sa: StringList(sa); break;
            case IList list:
                BeginList(list.Count);
                foreach (var item in list) Object(item);
                EndList();
                break;
            case IEnumerable e:
                var items = new List<object?>();
                foreach (var item in e) items.Add(item);
                Object(items);
                break;
            default:
                String(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
                break;
        }
    }

    public void StringList(IReadOnlyList<string> values)
    {
        BeginList(values.Count);
        for (int i = 0; i < values.Count; i++) String(values[i]);
        EndList();
    }

    protected static int Utf8Length(string s) => Encoding.UTF8.GetByteCount(s);
}
