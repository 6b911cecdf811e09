using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;

namespace Kong.PluginServer.Protocol.ProtoBuf;

/// <summary>
/// ProtoBuf:1 encoding of PDK steps (docs/protocol.md#event-sequence): a frame with the method name, a frame with the
/// argument message. Hot messages are written and read by hand without allocating; the cold result
/// types (Route, Service, Consumer, MemoryStats, ...) go through the generated Google.Protobuf types.
/// </summary>
internal sealed class ProtoBufPdkCodec : PdkCodec
{
    private readonly ProtoBufValueWriter _values = new();
    private readonly StructEntriesAdapter _structEntries;

    public ProtoBufPdkCodec() => _structEntries = new StructEntriesAdapter(_values);

    public override void WriteCall(OutputBuffer output, PdkMethod method, in PdkArgs a)
    {
        output.WriteFrame(method.NameUtf8);
        int frame = output.BeginFrame();
        var w = new ProtoWriter(output);
        switch (method.Arg)
        {
            case PdkArgKind.Empty:
                break;
            case PdkArgKind.String:
                if (!string.IsNullOrEmpty(a.Text)) w.StringField(1, a.Text);
                break;
            case PdkArgKind.ByteString:
                if (!a.Bytes.IsEmpty) w.BytesField(1, a.Bytes.Span);
                break;
            case PdkArgKind.Int:
                if (a.Number != 0) w.VarintField(1, a.Number);
                break;
            case PdkArgKind.Bool:
                if (a.Flag) w.BoolField(1, true);
                break;
            case PdkArgKind.KV:
            {
                if (!string.IsNullOrEmpty(a.Text)) w.StringField(1, a.Text);
                int v = w.BeginNested(2);
                _values.BeginRoot(output, ProtoBufValueWriter.RootValue);
                WriteRootValue(output, a.Value);
                w.EndNested(v);
                break;
            }
            case PdkArgKind.Struct:
                _values.BeginRoot(output, ProtoBufValueWriter.RootStruct);
                WriteStructEntries(output, a.Value);
                break;
            case PdkArgKind.ListValue:
                _values.BeginRoot(output, ProtoBufValueWriter.RootList);
                if (a.Value is object?[] items)
                    foreach (var item in items) _values.Object(item);
                else if (a.Text is not null)
                    _values.String(a.Text);
                break;
            case PdkArgKind.ExitArgs:
                // status is always set: Kong fills an absent status with 0, which raises (docs/protocol.md#proto3-defaults)
                w.VarintField(1, a.Number);
                if (!a.Bytes.IsEmpty) w.BytesField(2, a.Bytes.Span);
                if (a.Value is not null)
                {
                    int h = w.BeginNested(3);
                    _values.BeginRoot(output, ProtoBufValueWriter.RootStruct);
                    WriteStructEntries(output, a.Value);
                    w.EndNested(h);
                }
                break;
            case PdkArgKind.Target:
                if (!string.IsNullOrEmpty(a.Text)) w.StringField(1, a.Text);
                if (a.Number != 0) w.VarintField(2, a.Number);
                break;
            case PdkArgKind.ConsumerSpec:
                if (!string.IsNullOrEmpty(a.Text)) w.StringField(1, a.Text);
                if (a.Flag) w.BoolField(2, true);
                break;
            case PdkArgKind.AuthenticateArgs:
                if (a.Value is KongConsumer c)
                {
                    int n = w.BeginNested(1);
                    if (c.Id.Length > 0) w.StringField(1, c.Id);
                    if (c.CreatedAt != 0) w.VarintField(2, c.CreatedAt);
                    if (!string.IsNullOrEmpty(c.Username)) w.StringField(3, c.Username);
                    if (!string.IsNullOrEmpty(c.CustomId)) w.StringField(4, c.CustomId);
                    if (c.Tags is not null) foreach (var t in c.Tags) w.StringField(5, t);
                    w.EndNested(n);
                }
                if (a.Value2 is KongCredential cred)
                {
                    int n = w.BeginNested(2);
                    if (cred.Id.Length > 0) w.StringField(1, cred.Id);
                    if (!string.IsNullOrEmpty(cred.ConsumerId)) w.StringField(2, cred.ConsumerId);
                    w.EndNested(n);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method.Arg, "unknown argument kind");
        }
        output.EndFrame(frame);
    }

    private void WriteRootValue(OutputBuffer output, object? value)
    {
        // The root Value: write its oneof member directly into the open Value message (self-contained bytes, so an
        // encoded value's kept form is copied as it is).
        if (value is not PdkEncodedValue e) { _values.Object(value); return; }
        if (e.TryCopy(output, PdkEncodedValue.Form.ProtoBufValue, out int start)) return;
        _values.Object(e.Value);
        e.Written(output, PdkEncodedValue.Form.ProtoBufValue, start);
    }

    private void WriteStructEntries(OutputBuffer output, object? map)
    {
        if (map is null) return;
        if (map is not PdkEncodedValue e) { WriteStructEntries(map); return; }
        if (e.TryCopy(output, PdkEncodedValue.Form.ProtoBufStruct, out int start)) return;
        WriteStructEntries(e.Value);
        e.Written(output, PdkEncodedValue.Form.ProtoBufStruct, start);
    }

    private void WriteStructEntries(object map)
    {
        // a map writer emits BeginMap/Key.../EndMap; at a Struct root only the entries are wanted
        _structEntries.Reset();
        if (map is IPdkValue v) v.WriteTo(_structEntries);
        else _structEntries.Object(map);
    }

    /// <summary>Lets a map writer target a Struct body: the outermost BeginMap/EndMap are dropped.</summary>
    private sealed class StructEntriesAdapter(ProtoBufValueWriter inner) : PdkValueWriter
    {
        private int _depth;
        public void Reset() => _depth = 0;
        public override void BeginMap(int count) { if (_depth++ > 0) inner.BeginMap(count); }
        public override void EndMap() { if (--_depth > 0) inner.EndMap(); }
        public override void Key(string name) => inner.Key(name);
        public override void Null() => inner.Null();
        public override void String(string value) => inner.String(value);
        public override void String(ReadOnlySpan<byte> utf8) => inner.String(utf8);
        public override void Number(double value) => inner.Number(value);
        public override void Integer(long value) => inner.Integer(value);
        public override void Bool(bool value) => inner.Bool(value);
        public override void BeginList(int count) => inner.BeginList(count);
        public override void EndList() => inner.EndList();
    }

    // ---------------- replies ----------------

    public override ReadOnlySpan<byte> ReadUtf8(ReadOnlyMemory<byte> reply)
    {
        var r = new ProtoReader(reply.Span);
        ReadOnlySpan<byte> result = default;
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 2) result = r.LengthDelimited();
            else r.Skip(wt);
        }
        return result;
    }

    public override string ReadString(ReadOnlyMemory<byte> reply)
    {
        var utf8 = ReadUtf8(reply);
        return utf8.IsEmpty ? "" : Encoding.UTF8.GetString(utf8);
    }

    public override byte[] ReadBytes(ReadOnlyMemory<byte> reply) => ReadUtf8(reply).ToArray();

    public override long ReadInt(ReadOnlyMemory<byte> reply)
    {
        var r = new ProtoReader(reply.Span);
        long v = 0;
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 0) v = (int)r.Varint();
            else r.Skip(wt);
        }
        return v;
    }

    public override double ReadNumber(ReadOnlyMemory<byte> reply)
    {
        var r = new ProtoReader(reply.Span);
        double v = 0;
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 1) v = r.Fixed64Double();
            else r.Skip(wt);
        }
        return v;
    }

    public override bool ReadBool(ReadOnlyMemory<byte> reply)
    {
        var r = new ProtoReader(reply.Span);
        bool v = false;
        while (r.Next(out int f, out int wt))
        {
            if (f == 1 && wt == 0) v = r.Varint() != 0;
            else r.Skip(wt);
        }
        return v;
    }

    public override object? ReadValue(ReadOnlyMemory<byte> reply) => ProtoValues.ReadValue(reply.Span, 0);

    public override KongMultiMap ReadMultiMap(ReadOnlyMemory<byte> reply) => ProtoValues.ReadMultiMap(reply.Span);

    public override KongConsumer? ReadConsumer(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return null;
        var c = Consumer.Parser.ParseFrom(reply.Span);
        if (c.Id.Length == 0 && c.Username.Length == 0 && c.CustomId.Length == 0) return null;
        return new KongConsumer(c.Id, NullIfEmpty(c.Username), NullIfEmpty(c.CustomId), c.CreatedAt, c.Tags.ToArray());
    }

    public override KongCredential? ReadCredential(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return null;
        var c = AuthenticatedCredential.Parser.ParseFrom(reply.Span);
        return c.Id.Length == 0 && c.ConsumerId.Length == 0 ? null : new KongCredential(c.Id, NullIfEmpty(c.ConsumerId));
    }

    public override KongRoute? ReadRoute(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return null;
        var r = Route.Parser.ParseFrom(reply.Span);
        return new KongRoute(r.Id, r.Name, r.CreatedAt, r.UpdatedAt, r.Protocols.ToArray(), r.Methods.ToArray(), r.Hosts.ToArray(),
            r.Paths.ToArray(), r.Tags.ToArray(), r.StripPath, r.PreserveHost, r.RegexPriority, r.HttpsRedirectStatusCode, r.Service?.Id);
    }

    public override KongService? ReadService(ReadOnlyMemory<byte> reply)
    {
        if (reply.IsEmpty) return null;
        var s = Service.Parser.ParseFrom(reply.Span);
        return new KongService(s.Id, s.Name, s.CreatedAt, s.UpdatedAt, s.Protocol, s.Host, s.Port, s.Path, s.Retries,
            s.ConnectTimeout, s.WriteTimeout, s.ReadTimeout, s.Tags.ToArray());
    }

    public override KongMemoryStats ReadMemoryStats(ReadOnlyMemory<byte> reply)
    {
        var m = MemoryStats.Parser.ParseFrom(reply.Span);
        var d = m.LuaSharedDicts;
        return new KongMemoryStats(d?.Kong?.AllocatedSlabs ?? 0, d?.Kong?.Capacity ?? 0, d?.KongDbCache?.AllocatedSlabs ?? 0,
            d?.KongDbCache?.Capacity ?? 0, m.WorkersLuaVms.Select(w => (w.Pid, w.HttpAllocatedGc)).ToArray());
    }

    public override KongRawBody ReadRawBody(ReadOnlyMemory<byte> reply)
    {
        var b = RawBodyResult.Parser.ParseFrom(reply.Span);
        return b.KindCase switch
        {
            RawBodyResult.KindOneofCase.Content => new KongRawBody(b.Content.ToByteArray(), null, null),
            RawBodyResult.KindOneofCase.BodyFilepath => new KongRawBody(null, b.BodyFilepath, null),
            RawBodyResult.KindOneofCase.Error => new KongRawBody(null, null, b.Error),
            _ => new KongRawBody([], null, null),
        };
    }

    public override KongUriCaptures ReadUriCaptures(ReadOnlyMemory<byte> reply)
    {
        var u = UriCapturesResult.Parser.ParseFrom(reply.Span);
        return new KongUriCaptures(u.Unnamed.Select(b => b.ToByteArray()).ToArray(),
            u.Named.ToDictionary(kv => kv.Key, kv => kv.Value.ToByteArray()));
    }

    public override bool NextHeader(ReadOnlyMemory<byte> reply, scoped ref int offset, out ReadOnlySpan<byte> name, out int valueCount, out ReadOnlySpan<byte> first)
    {
        // a Struct: repeated field 1 (map entry: key 1, Value 2), walked in place: no dictionary, no strings
        name = default; first = default; valueCount = 0;
        var all = reply.Span;
        while (offset < all.Length)
        {
            var r = new ProtoReader(all[offset..]);
            if (!r.Next(out int f, out int wt)) { offset = all.Length; return false; }
            if (f != 1 || wt != 2) { r.Skip(wt); offset += r.Position; continue; }
            var entry = new ProtoReader(r.LengthDelimited());
            offset += r.Position;
            ReadOnlySpan<byte> value = default;
            while (entry.Next(out int ef, out int ewt))
            {
                if (ef == 1 && ewt == 2) name = entry.LengthDelimited();
                else if (ef == 2 && ewt == 2) value = entry.LengthDelimited();
                else entry.Skip(ewt);
            }
            // Value: string_value (3) or list_value (6) of string Values
            var v = new ProtoReader(value);
            while (v.Next(out int vf, out int vwt))
            {
                if (vf == 3 && vwt == 2) { first = v.LengthDelimited(); valueCount = 1; break; }
                if (vf == 6 && vwt == 2)
                {
                    var list = new ProtoReader(v.LengthDelimited());
                    while (list.Next(out int lf, out int lwt))
                    {
                        if (lf != 1 || lwt != 2) { list.Skip(lwt); continue; }
                        var item = new ProtoReader(list.LengthDelimited());
                        while (item.Next(out int itf, out int itwt))
                        {
                            if (itf == 3 && itwt == 2) { var s = item.LengthDelimited(); if (valueCount == 0) first = s; }
                            else item.Skip(itwt);
                        }
                        valueCount++;
                    }
                    break;
                }
                v.Skip(vwt);
            }
            return true;
        }
        return false;
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}
