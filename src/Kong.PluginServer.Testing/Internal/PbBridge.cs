using System.Collections;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using PbString = Kong.PluginServer.Protocol.ProtoBuf.Messages.String;
using PbInt = Kong.PluginServer.Protocol.ProtoBuf.Messages.Int;
using PbBool = Kong.PluginServer.Protocol.ProtoBuf.Messages.Bool;
using PbNumber = Kong.PluginServer.Protocol.ProtoBuf.Messages.Number;
using PbByteString = Kong.PluginServer.Protocol.ProtoBuf.Messages.ByteString;
using PbValue = Google.Protobuf.WellKnownTypes.Value;

namespace Kong.PluginServer.Testing.Internal;

internal enum PbKind
{
    Other, Empty, Value, ListValue, Struct, Bool, Int, Number, String, ByteString, KV, Target, ExitArgs, ConsumerSpec,
    AuthenticateArgs, RawBodyResult,
}

/// <summary>A PDK method callable over ProtoBuf:1: Kong's name for it, its input/output types and the Lua function.</summary>
internal sealed class PbMethod(string wireName, MessageDescriptor input, MessageDescriptor output, PdkMethod? impl)
{
    public string WireName { get; } = wireName;
    public MessageDescriptor Input { get; } = input;
    public MessageDescriptor Output { get; } = output;
    public PbKind InputKind { get; } = PbBridge.KindOf(input);
    public PbKind OutputKind { get; } = PbBridge.KindOf(output);
    public PdkMethod? Impl { get; } = impl;
}

/// <summary>Kong's pb_rpc: the method table built from the .proto service, and the unwrap (protobuf to Lua
/// arguments) and wrap (Lua return to protobuf) rules, quirks included.</summary>
internal static class PbBridge
{
    public static readonly Dictionary<string, PbMethod> Methods;
    private static readonly Dictionary<string, PbMethod>.AlternateLookup<ReadOnlySpan<char>> Lookup;

    static PbBridge()
    {
        Methods = new Dictionary<string, PbMethod>(StringComparer.Ordinal);
        foreach (var service in PluginsocketReflection.Descriptor.Services)
        {
            foreach (var m in service.Methods)
            {
                var name = WireName(m);
                Methods[name] = new PbMethod(name, m.InputType, m.OutputType, KongPdk.Methods.GetValueOrDefault(name));
            }
        }
        Lookup = Methods.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Kong's rule: Service.Method, '_' to '.', '_' between a lowercase letter (plus digits) and an
    /// uppercase letter, lowercased; the MethodName option wins.</summary>
    public static string WireName(MethodDescriptor m)
    {
        var opt = m.GetOptions()?.GetExtension(PluginsocketExtensions.MethodName);
        if (!string.IsNullOrEmpty(opt)) return opt;
        var s = (m.Service.Name + "." + m.Name).Replace('_', '.');
        return Regex.Replace(s, "([a-z][0-9]*)([A-Z])", "$1_$2").ToLowerInvariant();
    }

    public static PbMethod? Find(ReadOnlySpan<byte> name, out string? decodedName)
    {
        decodedName = null;
        if (name.Length <= 128)
        {
            Span<char> chars = stackalloc char[name.Length];
            int n = Encoding.Latin1.GetChars(name, chars);
            if (Lookup.TryGetValue(chars[..n], out var m)) return m;
        }
        decodedName = Encoding.UTF8.GetString(name);
        return Methods.GetValueOrDefault(decodedName);
    }

    internal static PbKind KindOf(MessageDescriptor d) => d.FullName switch
    {
        "google.protobuf.Empty" => PbKind.Empty,
        "google.protobuf.Value" => PbKind.Value,
        "google.protobuf.ListValue" => PbKind.ListValue,
        "google.protobuf.Struct" => PbKind.Struct,
        "kong_plugin_protocol.Bool" => PbKind.Bool,
        "kong_plugin_protocol.Int" => PbKind.Int,
        "kong_plugin_protocol.Number" => PbKind.Number,
        "kong_plugin_protocol.String" => PbKind.String,
        "kong_plugin_protocol.ByteString" => PbKind.ByteString,
        "kong_plugin_protocol.KV" => PbKind.KV,
        "kong_plugin_protocol.Target" => PbKind.Target,
        "kong_plugin_protocol.ExitArgs" => PbKind.ExitArgs,
        "kong_plugin_protocol.ConsumerSpec" => PbKind.ConsumerSpec,
        "kong_plugin_protocol.AuthenticateArgs" => PbKind.AuthenticateArgs,
        "kong_plugin_protocol.RawBodyResult" => PbKind.RawBodyResult,
        _ => PbKind.Other,
    };

    // ------------------------------------------------------------------ unwrap (argument frame -> Lua args)

    /// <summary>Decodes the argument frame (proto3 defaults filled, as lua-protobuf 0.5 does) into Lua arguments.</summary>
    public static LuaArgs Unwrap(PbMethod m, ReadOnlySpan<byte> data)
    {
        try
        {
            switch (m.InputKind)
            {
                case PbKind.Empty:
                    Empty.Parser.ParseFrom(data);
                    return LuaArgs.None;
                case PbKind.String: return new LuaArgs(PbString.Parser.ParseFrom(data).V);
                case PbKind.Int: return new LuaArgs((double)PbInt.Parser.ParseFrom(data).V);
                case PbKind.Bool: return new LuaArgs(PbBool.Parser.ParseFrom(data).V);
                case PbKind.Number: return new LuaArgs(PbNumber.Parser.ParseFrom(data).V);
                case PbKind.ByteString: return new LuaArgs(PbByteString.Parser.ParseFrom(data).V.ToByteArray());
                case PbKind.KV:
                {
                    var kv = KV.Parser.ParseFrom(data);
                    return new LuaArgs(kv.K, ValueToLua(kv.V));
                }
                case PbKind.ListValue: return new LuaArgs(ListToLua(ListValue.Parser.ParseFrom(data)));
                case PbKind.Struct: return new LuaArgs(StructToLua(Struct.Parser.ParseFrom(data)));
                case PbKind.Value: return new LuaArgs(ValueToLua(PbValue.Parser.ParseFrom(data)));
                case PbKind.Target:
                {
                    var t = Target.Parser.ParseFrom(data);
                    return new LuaArgs(t.Host, (double)t.Port);
                }
                case PbKind.ExitArgs:
                {
                    var e = ExitArgs.Parser.ParseFrom(data);
                    return new LuaArgs((double)e.Status, e.Body.ToByteArray(), e.Headers is null ? null : StructToLua(e.Headers));
                }
                case PbKind.ConsumerSpec:
                {
                    var s = ConsumerSpec.Parser.ParseFrom(data);
                    return new LuaArgs(s.Id, s.ByUsername);
                }
                case PbKind.AuthenticateArgs:
                {
                    var a = AuthenticateArgs.Parser.ParseFrom(data);
                    return new LuaArgs(a.Consumer is null ? null : MessageToLua(a.Consumer), a.Credential is null ? null : MessageToLua(a.Credential));
                }
                default:
                    return new LuaArgs(MessageToLua(m.Input.Parser.ParseFrom(data.ToArray())));
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new LuaError("assertion failed! (pb.decode " + m.Input.FullName + ": " + e.Message + ")");
        }
    }

    /// <summary>Kong's structpb_value: <c>bool_value or string_value or number_value or null_value</c> (false becomes nil,
    /// NULL_VALUE 0 the string "NULL_VALUE", another enum number that number).</summary>
    public static object? ValueToLua(PbValue? v)
    {
        if (v is null) return null;
        switch (v.KindCase)
        {
            case PbValue.KindOneofCase.ListValue: return ListToLua(v.ListValue);
            case PbValue.KindOneofCase.StructValue: return StructToLua(v.StructValue);
            case PbValue.KindOneofCase.BoolValue: return v.BoolValue ? true : null;
            case PbValue.KindOneofCase.StringValue: return v.StringValue;
            case PbValue.KindOneofCase.NumberValue: return v.NumberValue;
            case PbValue.KindOneofCase.NullValue:
                return (int)v.NullValue == 0 ? "NULL_VALUE" : (double)(int)v.NullValue;
            default: return null;
        }
    }

    public static List<object?> ListToLua(ListValue? l)
    {
        var list = new List<object?>();
        if (l is null) return list;
        foreach (var item in l.Values) list.Add(ValueToLua(item));
        return list;
    }

    public static Dictionary<string, object?> StructToLua(Struct s)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var kv in s.Fields)
        {
            var v = ValueToLua(kv.Value);
            if (v is not null) d[kv.Key] = v;
        }
        return d;
    }

    /// <summary>A decoded message as lua-protobuf hands it to Lua: every scalar present with its default, repeated fields as tables, absent sub-messages nil.</summary>
    public static Dictionary<string, object?> MessageToLua(IMessage msg)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var f in msg.Descriptor.Fields.InFieldNumberOrder())
        {
            var value = f.Accessor.GetValue(msg);
            if (f.IsMap)
            {
                var map = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in (IDictionary)value)
                    map[Lua.ToLuaString(ScalarToLua(f.MessageType.FindFieldByNumber(1), e.Key))] = ScalarToLua(f.MessageType.FindFieldByNumber(2), e.Value);
                d[f.Name] = map;
            }
            else if (f.IsRepeated)
            {
                var list = new List<object?>();
                foreach (var item in (IList)value) list.Add(ScalarToLua(f, item));
                d[f.Name] = list;
            }
            else if (f.RealContainingOneof is not null && !f.Accessor.HasValue(msg))
            {
                // oneof members stay nil
            }
            else d[f.Name] = ScalarToLua(f, value);
        }
        return d;
    }

    private static object? ScalarToLua(FieldDescriptor f, object? v) => v switch
    {
        null => null,
        string s => s,
        bool b => b,
        int i => f.FieldType == FieldType.Enum ? (double)i : (double)i,
        long l => (double)l,
        uint u => (double)u,
        ulong ul => (double)ul,
        double d => d,
        float fl => (double)fl,
        Google.Protobuf.ByteString bs => bs.ToByteArray(),
        IMessage m => MessageToLua(m),
        System.Enum e => (double)Convert.ToInt32(e, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString(),
    };

    // ------------------------------------------------------------------ wrap (Lua return -> reply frame)

    /// <summary>Encodes the Lua return value as Kong does. Returns null for Kong's "" reply (a 0-length frame).</summary>
    /// <exception cref="LuaError">The value cannot be encoded (Kong's encode error, a Lua error).</exception>
    public static IMessage? Wrap(PbMethod m, object? ret, PdkContext c)
    {
        object? first = ret is LuaMulti multi ? multi.First : ret;
        switch (m.OutputKind)
        {
            case PbKind.Value: return LuaToValue(first);
            case PbKind.ListValue:
                if (first is not List<object?> lst) throw new LuaError("bad argument #1 to 'ipairs' (table expected, got " + Lua.TypeName(first) + ")");
                return LuaToList(lst);
            case PbKind.Struct:
                if (!Lua.IsTable(first)) throw new LuaError("bad argument #1 to 'pairs' (table expected, got " + Lua.TypeName(first) + ")");
                return LuaToStruct(first);
            case PbKind.String:
                return first switch
                {
                    null => new PbString(),
                    string s => new PbString { V = s },
                    byte[] b => new PbString { V = Encoding.UTF8.GetString(b) },
                    double d => new PbString { V = Lua.FormatNumber(d) },
                    _ => throw EncodeError("string", "v", first),
                };
            case PbKind.ByteString:
                return first switch
                {
                    null => new PbByteString(),
                    _ when Lua.AsBytes(first) is { } b => new PbByteString { V = Google.Protobuf.ByteString.CopyFrom(b) },
                    double d => new PbByteString { V = Google.Protobuf.ByteString.CopyFromUtf8(Lua.FormatNumber(d)) },
                    _ => throw EncodeError("string", "v", first),
                };
            case PbKind.Int:
                return first is null ? new PbInt() : new PbInt { V = unchecked((int)ToInteger(first, "v")) };
            case PbKind.Number:
                return first is null ? new PbNumber() : new PbNumber { V = ToNumber(first, "v") };
            case PbKind.Bool:
                return new PbBool { V = Lua.Truthy(first) };
            case PbKind.RawBodyResult:
                if (Lua.IsString(first)) return new RawBodyResult { Content = Google.Protobuf.ByteString.CopyFrom(Lua.AsBytes(first)) };
                if (c.Req.BodyFilePath is { } path) return new RawBodyResult { BodyFilepath = path };
                return new RawBodyResult { Error = ret is LuaMulti mm && mm.Second is string err ? err : "Can't read request body" };
            default:
                // identity wrap: nil -> "" reply; a table is encoded by field name (unknown keys ignored); anything else fails
                if (ret is null) return null;
                if (!Lua.IsTable(first)) throw new LuaError("bad argument #2 to 'encode' (table expected, got " + Lua.TypeName(first) + ")");
                var msg = m.Output.Parser.ParseFrom(Array.Empty<byte>());
                FillMessage(msg, first);
                return msg;
        }
    }

    public static PbValue LuaToValue(object? v)
    {
        switch (v)
        {
            case null: return new PbValue { NullValue = (NullValue)1 }; // Kong: null_value = 1, not NULL_VALUE (0)
            case bool b: return new PbValue { BoolValue = b };
            case double or int or long: return new PbValue { NumberValue = Lua.AsNumber(v)!.Value };
            case string s: return new PbValue { StringValue = s };
            case byte[] bytes: return new PbValue { StringValue = Encoding.UTF8.GetString(bytes) };
            case List<object?> { Count: > 0 } list: return new PbValue { ListValue = LuaToList(list) };
            case List<object?> or Dictionary<string, object?> or MsgPackEmptyMap: return new PbValue { StructValue = LuaToStruct(v) };
            default: return new PbValue(); // userdata: no member set
        }
    }

    private static ListValue LuaToList(List<object?> list)
    {
        var l = new ListValue();
        foreach (var item in list)
        {
            if (item is null) break; // ipairs stops at the first nil
            l.Values.Add(LuaToValue(item));
        }
        return l;
    }

    private static Struct LuaToStruct(object? table)
    {
        var s = new Struct();
        switch (table)
        {
            case Dictionary<string, object?> d:
                foreach (var kv in d) if (kv.Value is not null) s.Fields[kv.Key] = LuaToValue(kv.Value);
                break;
            case List<object?> l:
                for (int i = 0; i < l.Count; i++) if (l[i] is not null) s.Fields[(i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)] = LuaToValue(l[i]);
                break;
        }
        return s;
    }

    private static LuaError EncodeError(string expected, string field, object? got) =>
        new($"bad argument #2 to 'encode' ({expected} expected for field '{field}', got {Lua.TypeName(got)})");

    private static long ToInteger(object? v, string field)
    {
        if (Lua.AsNumber(v) is double d) return (long)d;
        if (v is string s && double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var p)) return (long)p;
        throw EncodeError("number", field, v);
    }

    private static double ToNumber(object? v, string field)
    {
        if (Lua.AsNumber(v) is double d) return d;
        if (v is string s && double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var p)) return p;
        throw EncodeError("number", field, v);
    }

    /// <summary>lua-protobuf's pb.encode of a Lua table into <paramref name="msg"/>: fields by name, unknown keys ignored, nil skipped.</summary>
    private static void FillMessage(IMessage msg, object? table)
    {
        if (table is not Dictionary<string, object?> t) return; // a sequence table has no named fields
        foreach (var f in msg.Descriptor.Fields.InFieldNumberOrder())
        {
            if (!t.TryGetValue(f.Name, out var v) || v is null) continue;
            if (f.IsMap)
            {
                if (!Lua.IsTable(v)) throw EncodeError("table", f.Name, v);
                var dict = (IDictionary)f.Accessor.GetValue(msg);
                if (v is Dictionary<string, object?> md)
                    foreach (var kv in md)
                        if (kv.Value is not null) dict[ConvertScalar(f.MessageType.FindFieldByNumber(1), kv.Key)] = ConvertScalar(f.MessageType.FindFieldByNumber(2), kv.Value);
            }
            else if (f.IsRepeated)
            {
                if (!Lua.IsTable(v)) throw EncodeError("table", f.Name, v);
                var list = (IList)f.Accessor.GetValue(msg);
                if (v is List<object?> items)
                    foreach (var item in items)
                    {
                        if (item is null) break;
                        list.Add(ConvertScalar(f, item));
                    }
            }
            else f.Accessor.SetValue(msg, ConvertScalar(f, v));
        }
    }

    private static object ConvertScalar(FieldDescriptor f, object? v)
    {
        switch (f.FieldType)
        {
            case FieldType.String:
                if (v is double dn) return Lua.FormatNumber(dn);
                return Lua.AsString(v) ?? throw EncodeError("string", f.Name, v);
            case FieldType.Bytes:
                if (v is double db) return Google.Protobuf.ByteString.CopyFromUtf8(Lua.FormatNumber(db));
                return Google.Protobuf.ByteString.CopyFrom(Lua.AsBytes(v) ?? throw EncodeError("string", f.Name, v));
            case FieldType.Bool:
                return Lua.Truthy(v);
            case FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32:
                return unchecked((int)ToInteger(v, f.Name));
            case FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64:
                return ToInteger(v, f.Name);
            case FieldType.UInt32 or FieldType.Fixed32:
                return unchecked((uint)ToInteger(v, f.Name));
            case FieldType.UInt64 or FieldType.Fixed64:
                return unchecked((ulong)ToInteger(v, f.Name));
            case FieldType.Double:
                return ToNumber(v, f.Name);
            case FieldType.Float:
                return (float)ToNumber(v, f.Name);
            case FieldType.Enum:
                return (int)ToInteger(v, f.Name);
            case FieldType.Message:
                if (!Lua.IsTable(v)) throw EncodeError("table", f.Name, v);
                var sub = f.MessageType.Parser.ParseFrom(Array.Empty<byte>());
                if (f.MessageType.FullName == "google.protobuf.Value") return LuaToValue(v);
                if (f.MessageType.FullName == "google.protobuf.Struct") return LuaToStruct(v);
                FillMessage(sub, v);
                return sub;
            default:
                throw EncodeError(f.FieldType.ToString().ToLowerInvariant(), f.Name, v);
        }
    }
}
