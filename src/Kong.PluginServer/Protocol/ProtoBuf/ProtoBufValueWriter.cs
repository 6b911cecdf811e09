using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>
/// Writes values as google.protobuf.Value / Struct / ListValue, in place, with back-patched lengths.
/// The root is opened by the caller: a Value body, a Struct body (set_headers, ExitArgs.headers) or a
/// ListValue body (kong.log.*).
/// </summary>
internal sealed class ProtoBufValueWriter : PdkValueWriter
{
    private enum Container : byte { RootValue, RootStruct, RootList, Map, List }

    private OutputBuffer _out = null!;
    private readonly Container[] _kinds = new Container[64];
    private readonly int[] _opens = new int[64 * 2];
    private int _depth;
    // a map key opened an entry and its value slot: closing the next value closes both
    private readonly bool[] _keyOpen = new bool[64];
    private readonly int[] _entryStart = new int[64];
    private readonly int[] _valueStart = new int[64];

    private ProtoWriter W => new(_out);

    public void BeginRoot(OutputBuffer output, int rootKind)
    {
        _out = output;
        _depth = 0;
        _kinds[0] = (Container)rootKind;
        _keyOpen[0] = false;
    }

    public const int RootValue = 0, RootStruct = 1, RootList = 2;

    // ---- slot handling: where the next value goes ----

    private void OpenSlot()
    {
        switch (_kinds[_depth])
        {
            case Container.RootList:
            case Container.List:
                _opens[_depth] = W.BeginNested(1); // ListValue.values (a Value)
                break;
            case Container.RootStruct:
            case Container.Map:
                if (!_keyOpen[_depth]) throw new InvalidOperationException("a map value needs a Key() first");
                break;
        }
    }

    private void CloseSlot()
    {
        switch (_kinds[_depth])
        {
            case Container.RootList:
            case Container.List:
                W.EndNested(_opens[_depth]);
                break;
            case Container.RootStruct:
            case Container.Map:
                W.EndNested(_valueStart[_depth]);
                W.EndNested(_entryStart[_depth]);
                _keyOpen[_depth] = false;
                break;
        }
    }

    public override void Null()
    {
        // An empty Value (no oneof member): Kong unwraps it to nil. (null_value = 0 would arrive as "NULL_VALUE".)
        OpenSlot();
        CloseSlot();
    }

    public override void String(string value) { OpenSlot(); W.StringField(3, value); CloseSlot(); }

    public override void String(ReadOnlySpan<byte> utf8) { OpenSlot(); W.BytesField(3, utf8); CloseSlot(); }

    public override void Number(double value) { OpenSlot(); W.DoubleField(2, value); CloseSlot(); }

    public override void Integer(long value) => Number(value);

    public override void Bool(bool value) { OpenSlot(); W.BoolField(4, value); CloseSlot(); }

    public override void BeginMap(int count)
    {
        OpenSlot();
        int structStart = W.BeginNested(5); // Value.struct_value
        Push(Container.Map, structStart);
    }

    public override void Key(string name)
    {
        if (_kinds[_depth] is not (Container.Map or Container.RootStruct))
            throw new InvalidOperationException("Key() outside a map");
        _entryStart[_depth] = W.BeginNested(1);  // Struct.fields entry
        W.StringField(1, name);                  // entry.key
        _valueStart[_depth] = W.BeginNested(2);  // entry.value (a Value)
        _keyOpen[_depth] = true;
    }

    public override void EndMap()
    {
        int start = Pop(Container.Map);
        W.EndNested(start);
        CloseSlot();
    }

    public override void BeginList(int count)
    {
        OpenSlot();
        int listStart = W.BeginNested(6); // Value.list_value
        Push(Container.List, listStart);
    }

    public override void EndList()
    {
        int start = Pop(Container.List);
        W.EndNested(start);
        CloseSlot();
    }

    private void Push(Container kind, int start)
    {
        if (_depth + 1 >= _kinds.Length) throw new InvalidOperationException("value nested too deeply");
        _depth++;
        _kinds[_depth] = kind;
        _opens[_depth + 64] = start;
        _keyOpen[_depth] = false;
    }

    private int Pop(Container kind)
    {
        if (_depth == 0 || _kinds[_depth] != kind) throw new InvalidOperationException("unbalanced map/list");
        int start = _opens[_depth + 64];
        _depth--;
        return start;
    }
}
