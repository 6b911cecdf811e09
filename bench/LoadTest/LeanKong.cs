using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using MessagePack;

namespace LoadTest;

/// <summary>How one event ended, as Kong would see it.</summary>
public enum Outcome { Completed, Exited, Failed }

public sealed class KongProtocolException(string message) : Exception(message);

/// <summary>
/// One blocking Kong-side connection: exact-length frame reads from a buffer, writes the way Kong's cosocket makes
/// them (ProtoBuf:1: the 4-byte length and the payload as two sends; MsgPack:1: one send per request).
/// Counts round trips: a receive that had to wait after this side sent something.
/// </summary>
public sealed class LeanConn : IDisposable
{
    public readonly Socket Socket;
    public byte[] Buf = new byte[64 * 1024];
    public int Start, End;
    private bool _sentSinceRecv;
    public int RoundTrips;

    private LeanConn(Socket s) => Socket = s;

    public static LeanConn Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { s.Connect(new UnixDomainSocketEndPoint(path)); }
        catch { s.Dispose(); throw; }
        return new LeanConn(s);
    }

    public void Send(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = Socket.Send(bytes, SocketFlags.None);
            bytes = bytes[n..];
        }
        _sentSinceRecv = true;
    }

    /// <summary>A ProtoBuf:1 frame; <paramref name="split"/>: length and payload as two writes, as Kong does.</summary>
    public void SendFrame(ReadOnlySpan<byte> payload, bool split, Span<byte> scratch)
    {
        if (split || payload.Length + 4 > scratch.Length)
        {
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)payload.Length);
            Send(len);
            if (!payload.IsEmpty) Send(payload);
            return;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(scratch, (uint)payload.Length);
        payload.CopyTo(scratch[4..]);
        Send(scratch[..(4 + payload.Length)]);
    }

    private void ReceiveMore(int needed)
    {
        if (Start == End) Start = End = 0;
        if (Start + needed > Buf.Length)
        {
            var target = needed > Buf.Length ? new byte[Math.Max(needed, Buf.Length * 2)] : Buf;
            Buffer.BlockCopy(Buf, Start, target, 0, End - Start);
            End -= Start;
            Start = 0;
            Buf = target;
        }
        if (_sentSinceRecv) { RoundTrips++; _sentSinceRecv = false; }
        int n = Socket.Receive(Buf, End, Buf.Length - End, SocketFlags.None);
        if (n <= 0) throw new KongProtocolException("closed");
        End += n;
    }

    /// <summary>Reads one frame; returns its offset in <see cref="Buf"/> (valid until the next read) and length.</summary>
    public (int Offset, int Length) ReadFrame()
    {
        while (End - Start < 4) ReceiveMore(4);
        int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(Buf.AsSpan(Start, 4));
        if (len < 0 || len > 64 * 1024 * 1024) throw new KongProtocolException("bad frame length");
        while (End - Start < 4 + len) ReceiveMore(4 + len);
        int off = Start + 4;
        Start += 4 + len;
        return (off, len);
    }

    /// <summary>Like Kong's mp_rpc: a fresh unpacker over receiveany(4096) until one whole msgpack object is in.</summary>
    public ReadOnlyMemory<byte> ReadMsgPack()
    {
        Start = End = 0;
        while (true)
        {
            ReceiveMore(1);
            var mem = new ReadOnlyMemory<byte>(Buf, Start, End - Start);
            var r = new MessagePackReader(mem);
            bool complete;
            try { r.Skip(); complete = true; }
            catch (EndOfStreamException) { complete = false; }
            if (complete)
            {
                int used = (int)r.Consumed;
                Start += used;
                // a serverPid notification before the response: skip it
                var peek = new MessagePackReader(mem[..used]);
                if (peek.ReadArrayHeader() == 3 && peek.ReadInt32() == 2) { Start = End = 0; continue; }
                return mem[..used];
            }
        }
    }

    public bool IsClean => Start == End;

    public void Dispose() { try { Socket.Dispose(); } catch { } }
}

/// <summary>Counters of one request slot (a simulated in-flight nginx request).</summary>
public sealed class SlotStats
{
    public long Events, Completed, Exited, Failed, Unexpected, PdkCalls, RoundTrips, Connects;
    public List<long> LatencyTicks = new(1 << 16);
    public string? LastError;

    public void Add(SlotStats o)
    {
        Events += o.Events; Completed += o.Completed; Exited += o.Exited; Failed += o.Failed; Unexpected += o.Unexpected;
        PdkCalls += o.PdkCalls; RoundTrips += o.RoundTrips; Connects += o.Connects;
        LatencyTicks.AddRange(o.LatencyTicks);
        LastError ??= o.LastError;
    }
}

/// <summary>
/// A lean simulated nginx worker: its own keep-alive pool, RPC counter and cached instance id, with Kong's
/// bytes and call order but none of the simulator's bookkeeping, so that the client's own CPU stays small
/// next to the server's on a 2-core machine.
/// </summary>
public sealed class LeanWorker : IDisposable
{
    private static readonly byte[] MGetHeader = "kong.request.get_header"u8.ToArray();
    private static readonly byte[] MGetHeaders = "kong.request.get_headers"u8.ToArray();
    private static readonly byte[] MGetMethod = "kong.request.get_method"u8.ToArray();
    private static readonly byte[] MGetPath = "kong.request.get_path"u8.ToArray();
    private static readonly byte[] MExit = "kong.response.exit"u8.ToArray();
    private static readonly byte[] MAuthenticate = "kong.client.authenticate"u8.ToArray();
    private static readonly byte[] MLoadConsumer = "kong.client.load_consumer"u8.ToArray();

    private readonly string _socket;
    private readonly Proto _proto;
    private readonly string _pluginName;
    private readonly string _configJson;
    private readonly bool _splitWrites;
    private readonly ConcurrentStack<LeanConn> _pool = new();
    private long _pbSeq = 1;
    private long _msgId;
    private long _connects;
    public int InstanceId { get; private set; } = -1;

    public LeanWorker(string socket, Proto proto, string pluginName, string configJson, bool splitWrites)
    {
        _socket = socket;
        _proto = proto;
        _pluginName = pluginName;
        _configJson = configJson;
        _splitWrites = splitWrites;
    }

    public long Connects => Interlocked.Read(ref _connects);

    private LeanConn Checkout()
    {
        if (_pool.TryPop(out var c)) return c;
        Interlocked.Increment(ref _connects);
        return LeanConn.Connect(_socket);
    }

    private void Release(LeanConn c)
    {
        if (c.IsClean) _pool.Push(c);
        else c.Dispose();
    }

    // ------------------------------------------------------------------ instances

    public void StartInstance()
    {
        if (_proto == Proto.ProtoBuf)
        {
            var c = Checkout();
            long seq = Interlocked.Increment(ref _pbSeq);
            var call = KongWire.StartInstance(seq, _pluginName, _configJson).ToByteArray();
            c.SendFrame(call, _splitWrites, new byte[call.Length + 4]);
            var (off, len) = c.ReadFrame();
            var ret = RpcReturn.Parser.ParseFrom(c.Buf, off, len);
            if (ret.Sequence != seq || ret.InstanceStatus is null) throw new KongProtocolException("bad StartInstance reply");
            InstanceId = ret.InstanceStatus.InstanceId;
            Release(c);
        }
        else
        {
            var c = Checkout();
            long id = Interlocked.Increment(ref _msgId);
            c.Send(KongWire.MsgPackRequest(id, "plugin.StartInstance", new Dictionary<string, object?> { ["Name"] = _pluginName, ["Config"] = _configJson }));
            var reply = KongWire.DecodeMsgPack(c.ReadMsgPack().Span) as List<object?> ?? throw new KongProtocolException("bad StartInstance reply");
            if (reply[2] is string err) throw new KongProtocolException("StartInstance: " + err);
            var map = reply[3] as Dictionary<string, object?> ?? throw new KongProtocolException("StartInstance without a result");
            InstanceId = (int)(double)map["Id"]!;
            Release(c);
        }
    }

    // ------------------------------------------------------------------ events

    /// <summary>Runs one access event, checks its result against the request's expectation.</summary>
    public void RunEvent(RequestTemplate r, SlotStats st, byte[] scratch)
    {
        Outcome o;
        int status;
        try
        {
            (o, status) = _proto == Proto.ProtoBuf ? RunPb(r, st, scratch) : RunMp(r, st, scratch);
        }
        catch (Exception e) when (e is SocketException or KongProtocolException or MessagePackSerializationException or EndOfStreamException or InvalidOperationException)
        {
            st.Failed++;
            st.LastError = e.Message;
            st.Events++;
            return;
        }
        st.Events++;
        if (o == Outcome.Completed) st.Completed++; else st.Exited++;
        bool ok = r.Expect switch
        {
            Expect.Allow => o == Outcome.Completed,
            Expect.Reject401 => o == Outcome.Exited && status == 401,
            Expect.Deny403 => o == Outcome.Exited && status == 403,
            _ => false,
        };
        if (!ok)
        {
            st.Unexpected++;
            st.LastError ??= $"expected {r.Expect}, got {o} {status}";
        }
    }

    private (Outcome, int) RunPb(RequestTemplate r, SlotStats st, byte[] scratch)
    {
        var c = Checkout();
        bool keep = false;
        int rt0 = c.RoundTrips;
        try
        {
            long seq = Interlocked.Increment(ref _pbSeq);
            // RpcCall{1: sequence, 36: CmdHandleEvent{1: instance_id, 2: "access"}}
            int n = 0;
            var call = scratch.AsSpan(4096);
            call[n++] = 0x08; n += WriteVarint(call[n..], (ulong)seq);
            call[n++] = 0xa2; call[n++] = 0x02;
            int inner = 0;
            Span<byte> body = stackalloc byte[32];
            body[inner++] = 0x08; inner += WriteVarint(body[inner..], (ulong)(uint)InstanceId);
            body[inner++] = 0x12; body[inner++] = 6; "access"u8.CopyTo(body[inner..]); inner += 6;
            n += WriteVarint(call[n..], (ulong)inner);
            body[..inner].CopyTo(call[n..]); n += inner;
            c.SendFrame(call[..n], _splitWrites, scratch);

            while (true)
            {
                var (mo, ml) = c.ReadFrame();
                if (ml == 0)
                {
                    var (ro, rl) = c.ReadFrame();
                    var rr = new ReadOnlySpan<byte>(c.Buf, ro, rl);
                    if (rl < 2 || rr[0] != 0x08 || ReadVarint(rr[1..], out _) != (ulong)seq) throw new KongProtocolException("RpcReturn.sequence mismatch");
                    keep = true;
                    return (Outcome.Completed, 200);
                }
                var name = new ReadOnlySpan<byte>(c.Buf, mo, ml);
                int kind = Classify(name);
                var (ao, al) = c.ReadFrame();
                var args = new ReadOnlySpan<byte>(c.Buf, ao, al);
                st.PdkCalls++;
                switch (kind)
                {
                    case 1: // get_header: String{v: name}
                    {
                        var hname = Field1Bytes(args);
                        var found = r.Find(hname);
                        c.SendFrame(found is { } f ? f.Pb : [], _splitWrites, scratch);
                        break;
                    }
                    case 2: c.SendFrame(r.PbHeaders, _splitWrites, scratch); break;
                    case 3: c.SendFrame(r.PbMethod, _splitWrites, scratch); break;
                    case 4: c.SendFrame(r.PbPath, _splitWrites, scratch); break;
                    case 5: // exit: Kong records the response and never answers; the connection is abandoned
                        int status = al >= 2 && args[0] == 0x08 ? (int)ReadVarint(args[1..], out _) : 0;
                        return (Outcome.Exited, status);
                    case 7: throw new KongProtocolException("load_consumer is not served by the load test");
                    default: c.SendFrame([], _splitWrites, scratch); break; // setters, log: an empty reply
                }
            }
        }
        finally
        {
            st.RoundTrips += c.RoundTrips - rt0;
            if (keep) Release(c); else c.Dispose();
        }
    }

    private (Outcome, int) RunMp(RequestTemplate r, SlotStats st, byte[] scratch)
    {
        // plugin.HandleEvent {InstanceId, EventName}
        int n = BeginRequest(scratch, "plugin.HandleEvent"u8, out long msgId);
        scratch[n++] = 0x91;
        scratch[n++] = 0x82;
        n += WriteStr(scratch.AsSpan(n), "InstanceId"u8);
        n += WriteUInt(scratch.AsSpan(n), (uint)InstanceId);
        n += WriteStr(scratch.AsSpan(n), "EventName"u8);
        n += WriteStr(scratch.AsSpan(n), "access"u8);
        var response = Rpc(scratch.AsSpan(0, n), msgId, st);
        while (true)
        {
            // result {EventId, Data: "ret" | {Method, Args}}
            var reader = new MessagePackReader(response);
            int eventId = -1;
            ReadOnlyMemory<byte> data = default;
            int keys = reader.ReadMapHeader();
            for (int i = 0; i < keys; i++)
            {
                var key = reader.ReadString();
                if (key == "EventId") eventId = reader.ReadInt32();
                else if (key == "Data")
                {
                    long s0 = reader.Consumed;
                    reader.Skip();
                    data = response.Slice((int)s0, (int)(reader.Consumed - s0));
                }
                else reader.Skip();
            }
            var d = new MessagePackReader(data);
            if (d.NextMessagePackType == MessagePackType.String) return (Outcome.Completed, 200); // "ret"
            if (d.NextMessagePackType != MessagePackType.Map) throw new KongProtocolException("unexpected callback");
            int dk = d.ReadMapHeader();
            int kind = 0;
            ReadOnlySpan<byte> firstArgStr = default;
            long firstArgInt = 0;
            for (int i = 0; i < dk; i++)
            {
                var key = d.ReadString();
                if (key == "Method")
                {
                    if (!d.TryReadStringSpan(out var span)) span = Encoding.UTF8.GetBytes(d.ReadString() ?? "");
                    kind = Classify(span);
                }
                else if (key == "Args")
                {
                    int an = d.NextMessagePackType == MessagePackType.Array ? d.ReadArrayHeader() : 0;
                    for (int a = 0; a < an; a++)
                    {
                        if (a == 0 && d.NextMessagePackType == MessagePackType.String && d.TryReadStringSpan(out var s)) firstArgStr = s;
                        else if (a == 0 && d.NextMessagePackType == MessagePackType.Integer) firstArgInt = d.ReadInt64();
                        else d.Skip();
                    }
                }
                else d.Skip();
            }
            st.PdkCalls++;
            ReadOnlySpan<byte> value;
            ReadOnlySpan<byte> step = "plugin.Step"u8;
            switch (kind)
            {
                case 1:
                    var found = r.Find(firstArgStr);
                    value = found is { } f ? f.Mp : default;
                    break;
                case 2: value = r.MpHeaders; step = "plugin.StepMultiMap"u8; break;
                case 3: value = r.MpMethod; break;
                case 4: value = r.MpPath; break;
                case 5: return (Outcome.Exited, (int)firstArgInt); // Kong never answers exit
                case 6: value = default; step = "plugin.StepCredential"u8; break;
                case 7: throw new KongProtocolException("load_consumer is not served by the load test");
                default: value = default; break;
            }
            n = BeginRequest(scratch, step, out msgId);
            scratch[n++] = 0x91;
            scratch[n++] = value.IsEmpty ? (byte)0x81 : (byte)0x82;
            n += WriteStr(scratch.AsSpan(n), "EventId"u8);
            n += WriteUInt(scratch.AsSpan(n), (uint)eventId);
            if (!value.IsEmpty)
            {
                n += WriteStr(scratch.AsSpan(n), "Data"u8);
                if (n + value.Length > scratch.Length) throw new KongProtocolException("value too large for the scratch buffer");
                value.CopyTo(scratch.AsSpan(n));
                n += value.Length;
            }
            response = Rpc(scratch.AsSpan(0, n), msgId, st);
        }
    }

    /// <summary>One msgpack-rpc call on a pooled connection: one send, a fresh read, the connection goes back.</summary>
    private ReadOnlyMemory<byte> Rpc(ReadOnlySpan<byte> request, long msgId, SlotStats st)
    {
        var c = Checkout();
        int rt0 = c.RoundTrips;
        bool keep = false;
        try
        {
            c.Send(request);
            var msg = c.ReadMsgPack();
            var r = new MessagePackReader(msg);
            if (r.ReadArrayHeader() != 4 || r.ReadInt32() != 1) throw new KongProtocolException("not a response");
            if ((long)r.ReadUInt32() != msgId) throw new KongProtocolException("msgid mismatch");
            if (!r.TryReadNil())
            {
                var err = r.ReadString();
                throw new KongProtocolException("server error: " + err);
            }
            long start = r.Consumed;
            r.Skip();
            // copy out: the connection's buffer is reused by the next call on it
            var result = msg.Slice((int)start, (int)(r.Consumed - start)).ToArray();
            keep = true;
            return result;
        }
        finally
        {
            st.RoundTrips += c.RoundTrips - rt0;
            if (keep) Release(c); else c.Dispose();
        }
    }

    private int BeginRequest(byte[] b, ReadOnlySpan<byte> method, out long msgId)
    {
        msgId = Interlocked.Increment(ref _msgId);
        int n = 0;
        b[n++] = 0x94;
        b[n++] = 0x00;
        n += WriteUInt(b.AsSpan(n), (uint)msgId);
        n += WriteStr(b.AsSpan(n), method);
        return n;
    }

    private static int WriteUInt(Span<byte> b, uint v)
    {
        if (v < 128) { b[0] = (byte)v; return 1; }
        if (v < 256) { b[0] = 0xcc; b[1] = (byte)v; return 2; }
        if (v < 65536) { b[0] = 0xcd; BinaryPrimitives.WriteUInt16BigEndian(b[1..], (ushort)v); return 3; }
        b[0] = 0xce; BinaryPrimitives.WriteUInt32BigEndian(b[1..], v); return 5;
    }

    private static int WriteStr(Span<byte> b, ReadOnlySpan<byte> s)
    {
        if (s.Length >= 32) throw new ArgumentException("fixstr only");
        b[0] = (byte)(0xa0 | s.Length);
        s.CopyTo(b[1..]);
        return 1 + s.Length;
    }

    private static int Classify(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual(MGetHeader)) return 1;
        if (name.SequenceEqual(MGetHeaders)) return 2;
        if (name.SequenceEqual(MGetMethod)) return 3;
        if (name.SequenceEqual(MGetPath)) return 4;
        if (name.SequenceEqual(MExit)) return 5;
        if (name.SequenceEqual(MAuthenticate)) return 6;
        if (name.SequenceEqual(MLoadConsumer)) return 7;
        return 0;
    }

    private static ReadOnlySpan<byte> Field1Bytes(ReadOnlySpan<byte> msg)
    {
        if (msg.Length < 2 || msg[0] != 0x0a) return default;
        int len = (int)ReadVarint(msg[1..], out int used);
        return msg.Slice(1 + used, len);
    }

    private static int WriteVarint(Span<byte> b, ulong v)
    {
        int i = 0;
        while (v >= 0x80) { b[i++] = (byte)(v | 0x80); v >>= 7; }
        b[i++] = (byte)v;
        return i;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> b, out int used)
    {
        ulong v = 0;
        int shift = 0;
        for (used = 0; used < b.Length && used < 10; )
        {
            byte x = b[used++];
            v |= (ulong)(x & 0x7f) << shift;
            if (x < 0x80) return v;
            shift += 7;
        }
        throw new KongProtocolException("bad varint");
    }

    public void Dispose()
    {
        while (_pool.TryPop(out var c)) c.Dispose();
    }
}
