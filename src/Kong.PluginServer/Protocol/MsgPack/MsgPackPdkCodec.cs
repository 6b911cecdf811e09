using System.Text;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using MessagePack;

namespace Kong.PluginServer.Protocol.MsgPack;

/// <summary>
/// MsgPack:1 encoding of PDK calls: the callback <c>{"Method": name, "Args": [positional Lua args]}</c>
/// that answers Kong's HandleEvent/Step (docs/protocol.md#msgpack-methods); replies are the <c>Data</c> of Kong's next Step,
/// given here as the raw msgpack bytes of that value (empty when absent, i.e. nil).
/// </summary>
internal sealed class MsgPackPdkCodec : PdkCodec
{
    private readonly MsgPackValueWriter _values = new();

    public override void WriteCall(OutputBuffer output, PdkMethod method, in PdkArgs a)
    {
        var values = _values.To(output);
        var w = new MessagePackWriter(output);
        w.WriteMapHeader(2);
        w.Write("Method");
        w.Write(method.Name);
        w.Write("Args");
        switch (method.Arg)
        {
            case PdkArgKind.Empty: w.WriteArrayHeader(0); w.Flush(); break;
            case PdkArgKind.String: w.WriteArrayHeader(1); w.Write(a.Text ?? ""); w.Flush(); break;
            case PdkArgKind.ByteString: w.WriteArrayHeader(1); w.WriteString(a.Bytes.Span); w.Flush(); break;
            case PdkArgKind.Int: w.WriteArrayHeader(1); w.Write(a.Number); w.Flush(); break;
            case PdkArgKind.Bool: w.WriteArrayHeader(1); w.Write(a.Flag); w.Flush(); break;
            case PdkArgKind.KV:
                w.WriteArrayHeader(2); w.Write(a.Text ?? ""); w.Flush();
                WriteValue(output, values, a.Value);
                break;
            case PdkArgKind.Struct:
                w.WriteArrayHeader(1); w.Flush();
                if (a.Value is null) values.BeginMap(0);
                else WriteValue(output, values, a.Value);
                break;
            case PdkArgKind.ListValue:
                if (a.Value is object?[] items)
                {
                    w.WriteArrayHeader(items.Length); w.Flush();
                    foreach (var item in items) values.Object(item);
                }
                else { w.WriteArrayHeader(1); w.Write(a.Text ?? ""); w.Flush(); }
                break;
            case PdkArgKind.ExitArgs:
                w.WriteArrayHeader(3);
                w.Write(a.Number);
                if (a.Bytes.IsEmpty) w.WriteNil(); else w.WriteString(a.Bytes.Span);
                w.Flush();
                WriteValue(output, values, a.Value);
                break;
            case PdkArgKind.Target:
                w.WriteArrayHeader(2); w.Write(a.Text ?? ""); w.Write(a.Number); w.Flush(); break;
            case PdkArgKind.ConsumerSpec:
                w.WriteArrayHeader(2); w.Write(a.Text ?? ""); w.Write(a.Flag); w.Flush(); break;
            case PdkArgKind.AuthenticateArgs:
                w.WriteArrayHeader(2); w.Flush();
                if (a.Value is KongConsumer c)
                {
                    var m = new Dictionary<string, object?> { ["id"] = c.Id };
                    if (c.Username is not null) m["username"] = c.Username;
                    if (c.CustomId is not null) m["custom_id"] = c.CustomId;
                    if (c.CreatedAt != 0) m["created_at"] = c.CreatedAt;
                    if (c.Tags is not null) m["tags"] = c.Tags.ToArray();
                    values.Object(m);
                }
                else values.Null();
                if (a.Value2 is KongCredential cred)
                {
                    var m = new Dictionary<string, object?> { ["id"] = cred.Id };
                    if (cred.ConsumerId is not null) m["consumer_id"] = cred.ConsumerId;
                    values.Object(m);
                }
                else values.Null();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method.Arg, "unknown argument kind");
        }
    }

    /// <summary>A value argument; an encoded value's kept bytes are copied (a msgpack value is self-contained).</summary>
    private static void WriteValue(OutputBuffer output, MsgPackValueWriter values, object? value)
    {
        if (value is not PdkEncodedValue e) { values.Object(value); return; }
        if (e.TryCopy(output, PdkEncodedValue.Form.MsgPack, out int start)) return;
        values.Object(e.Value);
        e.Written(output, PdkEncodedValue.Form.MsgPack, start);
    }

    private static object? Value(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return null;
        var r = new MessagePackReader(reply);
        return MsgPackValues.Read(ref r);
    }

    public override ReadOnlySpan<byte> ReadUtf8(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return default;
        var r = new MessagePackReader(reply);
        switch (r.NextMessagePackType)
        {
            case MessagePackType.String:
                if (r.TryReadStringSpan(out var span)) return span;
                var seq = r.ReadStringSequence();
                return seq is null ? default : System.Buffers.BuffersExtensions.ToArray(seq.Value);
            case MessagePackType.Binary:
                var bin = r.ReadBytes();
                return bin is null ? default : System.Buffers.BuffersExtensions.ToArray(bin.Value);
            case MessagePackType.Nil:
                return default;
            default:
                return Encoding.UTF8.GetBytes(MsgPackValues.AsString(MsgPackValues.Read(ref r)) ?? "");
        }
    }

    // scalars are read straight from the reply: no object tree, no boxing
    public override string ReadString(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return "";
        var r = new MessagePackReader(reply);
        return r.NextMessagePackType switch
        {
            MessagePackType.String => r.ReadString() ?? "",
            MessagePackType.Nil => "",
            _ => MsgPackValues.AsString(Value(reply)) ?? "",
        };
    }

    public override long ReadInt(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return 0;
        var r = new MessagePackReader(reply);
        return r.NextMessagePackType switch
        {
            MessagePackType.Integer when r.NextCode != MessagePackCode.UInt64 => r.ReadInt64(),
            MessagePackType.Float => (long)r.ReadDouble(),
            MessagePackType.Nil => 0,
            _ => MsgPackValues.AsLong(Value(reply)),
        };
    }

    public override double ReadNumber(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return 0;
        var r = new MessagePackReader(reply);
        return r.NextMessagePackType switch
        {
            MessagePackType.Float => r.ReadDouble(),
            MessagePackType.Integer when r.NextCode != MessagePackCode.UInt64 => r.ReadInt64(),
            MessagePackType.Nil => 0,
            _ => MsgPackValues.AsDouble(Value(reply)),
        };
    }

    public override bool ReadBool(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return false;
        var r = new MessagePackReader(reply);
        return r.NextMessagePackType == MessagePackType.Boolean && r.ReadBoolean();
    }
    public override object? ReadValue(ReadOnlyMemory<byte> reply) => AsPdkValue(Value(reply));

    /// <summary>A value as plugins get it on either protocol (google.protobuf.Value's shapes): numbers are double,
    /// raw strings are string, throughout the tree.</summary>
    private static object? AsPdkValue(object? v)
    {
        switch (v)
        {
            case long l: return (double)l;
            case byte[] b: return Encoding.UTF8.GetString(b);
            case List<object?> list:
                for (int i = 0; i < list.Count; i++) list[i] = AsPdkValue(list[i]);
                return list;
            case Dictionary<string, object?> map:
                foreach (var key in map.Keys.ToArray()) map[key] = AsPdkValue(map[key]);
                return map;
            default: return v;
        }
    }
    public override byte[] ReadBytes(ReadOnlyMemory<byte> reply) => ReadUtf8(reply).ToArray();

    public override KongMultiMap ReadMultiMap(ReadOnlyMemory<byte> reply)
    {
        var map = new KongMultiMap();
        if (Value(reply) is Dictionary<string, object?> d)
            foreach (var (k, v) in d)
                map[k] = v switch { List<object?> l => l.Select(x => MsgPackValues.AsString(x) ?? "").ToArray(), true => [], null => [], _ => [MsgPackValues.AsString(v) ?? ""] };
        return map;
    }

    public override KongConsumer? ReadConsumer(ReadOnlyMemory<byte> reply) =>
        Value(reply) is Dictionary<string, object?> d && MsgPackValues.AsString(d.GetValueOrDefault("id")) is { Length: > 0 } id
            ? new KongConsumer(id, MsgPackValues.AsString(d.GetValueOrDefault("username")), MsgPackValues.AsString(d.GetValueOrDefault("custom_id")),
                MsgPackValues.AsLong(d.GetValueOrDefault("created_at")), MsgPackValues.AsStrings(d.GetValueOrDefault("tags")))
            : null;

    public override KongCredential? ReadCredential(ReadOnlyMemory<byte> reply) =>
        Value(reply) is Dictionary<string, object?> d && MsgPackValues.AsString(d.GetValueOrDefault("id")) is { Length: > 0 } id
            ? new KongCredential(id, MsgPackValues.AsString(d.GetValueOrDefault("consumer_id")))
            : null;

    public override KongRoute? ReadRoute(ReadOnlyMemory<byte> reply)
    {
        if (Value(reply) is not Dictionary<string, object?> d) return null;
        string S(string k) => MsgPackValues.AsString(d.GetValueOrDefault(k)) ?? "";
        IReadOnlyList<string> L(string k) => MsgPackValues.AsStrings(d.GetValueOrDefault(k));
        return new KongRoute(S("id"), S("name"), MsgPackValues.AsLong(d.GetValueOrDefault("created_at")), MsgPackValues.AsLong(d.GetValueOrDefault("updated_at")),
            L("protocols"), L("methods"), L("hosts"), L("paths"), L("tags"), d.GetValueOrDefault("strip_path") is true, d.GetValueOrDefault("preserve_host") is true,
            (int)MsgPackValues.AsLong(d.GetValueOrDefault("regex_priority")), (int)MsgPackValues.AsLong(d.GetValueOrDefault("https_redirect_status_code")),
            d.GetValueOrDefault("service") is Dictionary<string, object?> svc ? MsgPackValues.AsString(svc.GetValueOrDefault("id")) : null);
    }

    public override KongService? ReadService(ReadOnlyMemory<byte> reply)
    {
        if (Value(reply) is not Dictionary<string, object?> d) return null;
        string S(string k) => MsgPackValues.AsString(d.GetValueOrDefault(k)) ?? "";
        int I(string k) => (int)MsgPackValues.AsLong(d.GetValueOrDefault(k));
        return new KongService(S("id"), S("name"), MsgPackValues.AsLong(d.GetValueOrDefault("created_at")), MsgPackValues.AsLong(d.GetValueOrDefault("updated_at")),
            S("protocol"), S("host"), I("port"), S("path"), I("retries"), I("connect_timeout"), I("write_timeout"), I("read_timeout"),
            MsgPackValues.AsStrings(d.GetValueOrDefault("tags")));
    }

    public override KongMemoryStats ReadMemoryStats(ReadOnlyMemory<byte> reply)
    {
        var d = Value(reply) as Dictionary<string, object?>;
        var dicts = d?.GetValueOrDefault("lua_shared_dicts") as Dictionary<string, object?>;
        var kong = dicts?.GetValueOrDefault("kong") as Dictionary<string, object?>;
        var cache = dicts?.GetValueOrDefault("kong_db_cache") as Dictionary<string, object?>;
        var workers = (d?.GetValueOrDefault("workers_lua_vms") as List<object?>)?.OfType<Dictionary<string, object?>>()
            .Select(w => (MsgPackValues.AsLong(w.GetValueOrDefault("pid")), MsgPackValues.AsLong(w.GetValueOrDefault("http_allocated_gc")))).ToArray() ?? [];
        return new KongMemoryStats(MsgPackValues.AsLong(kong?.GetValueOrDefault("allocated_slabs")), MsgPackValues.AsLong(kong?.GetValueOrDefault("capacity")),
            MsgPackValues.AsLong(cache?.GetValueOrDefault("allocated_slabs")), MsgPackValues.AsLong(cache?.GetValueOrDefault("capacity")), workers);
    }

    public override KongRawBody ReadRawBody(ReadOnlyMemory<byte> reply) => Value(reply) switch
    {
        byte[] b => new KongRawBody(b, null, null),
        string s => new KongRawBody(Encoding.UTF8.GetBytes(s), null, null),
        _ => new KongRawBody([], null, null),
    };

    public override KongUriCaptures ReadUriCaptures(ReadOnlyMemory<byte> reply)
    {
        var d = Value(reply) as Dictionary<string, object?>;
        static byte[] B(object? v) => v switch { byte[] b => b, string s => Encoding.UTF8.GetBytes(s), _ => [] };
        var unnamed = (d?.GetValueOrDefault("unnamed") as List<object?>)?.Select(B).ToArray() ?? [];
        var named = (d?.GetValueOrDefault("named") as Dictionary<string, object?>)?.ToDictionary(kv => kv.Key, kv => B(kv.Value)) ?? [];
        return new KongUriCaptures(unnamed, named);
    }

    public override bool NextHeader(ReadOnlyMemory<byte> reply, scoped ref int offset, out ReadOnlySpan<byte> name, out int valueCount, out ReadOnlySpan<byte> first)
    {
        // Kong's map name -> value or [values], walked in place: no dictionary, no strings. The offset is 0 before
        // the map header and then always at a key.
        name = default; first = default; valueCount = 0;
        if (offset >= reply.Length) return false;
        var r = new MessagePackReader(reply[offset..]);
        if (offset == 0)
        {
            if (r.NextMessagePackType != MessagePackType.Map) { offset = reply.Length; return false; }
            r.ReadMapHeader();
            if (r.End) { offset = reply.Length; return false; }
        }
        var rest = reply[offset..];
        if (r.NextMessagePackType == MessagePackType.String) name = StringAt(rest, ref r);
        else r.Skip();
        switch (r.NextMessagePackType)
        {
            case MessagePackType.String or MessagePackType.Binary:
                first = StringAt(rest, ref r);
                valueCount = 1;
                break;
            case MessagePackType.Array:
            {
                int count = r.ReadArrayHeader();
                for (int j = 0; j < count; j++)
                {
                    if (j == 0 && r.NextMessagePackType is MessagePackType.String or MessagePackType.Binary) first = StringAt(rest, ref r);
                    else r.Skip();
                }
                valueCount = count;
                break;
            }
            default:
                r.Skip();
                break;
        }
        offset += (int)r.Consumed;
        return true;
    }

    /// <summary>The payload of the str/bin value at the reader, as a slice of the reply (no copy).</summary>
    private static ReadOnlySpan<byte> StringAt(ReadOnlyMemory<byte> reply, scoped ref MessagePackReader r)
    {
        int length;
        if (r.NextMessagePackType == MessagePackType.Binary) length = (int)(r.ReadBytes()?.Length ?? 0);
        else length = (int)(r.ReadStringSequence()?.Length ?? 0);
        int end = (int)r.Consumed;
        return reply.Span.Slice(end - length, length);
    }
}
