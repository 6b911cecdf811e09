using System.Buffers;
using Kong.PluginServer.Protocol.MsgPack;
using MessagePack;

namespace Kong.PluginServer.Tests.Protocol;

public sealed class OversizedRequestTests
{
    /// <summary>[0, msgId, method, [{k1: v1, k2: v2}]] with the map's pairs in the given order (long, string or byte[] values).</summary>
    private static byte[] Request(uint msgId, string method, params (string Key, object Value)[] pairs)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(4);
        w.Write(0);
        w.Write(msgId);
        w.Write(method);
        w.WriteArrayHeader(1);
        w.WriteMapHeader(pairs.Length);
        foreach (var (key, value) in pairs)
        {
            w.Write(key);
            switch (value)
            {
                case long l: w.Write(l); break;
                case ulong u: w.Write(u); break;
                case string str: w.Write(str); break;
                case byte[] bytes: w.Write(bytes); break;
                default: throw new ArgumentException(value.GetType().Name);
            }
        }
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static object Int(long v) => v;
    private static object Bin(byte[] v) => v;

    /// <summary>Feeds the request as the connection does: its first <paramref name="first"/> bytes, then pieces of <paramref name="piece"/>.</summary>
    private static OversizedRequest Read(byte[] request, int first, int piece)
    {
        var o = new OversizedRequest();
        o.Begin(request.AsMemory(0, Math.Min(first, request.Length)));
        for (int at = 0; at < request.Length; at += piece) o.Pass(request.AsSpan(at, Math.Min(piece, request.Length - at)));
        o.End();
        return o;
    }

    [Theory]
    [InlineData(5L)]
    [InlineData(200L)]
    [InlineData(40_000L)]
    [InlineData(3_000_000_000L)]
    public void A_Steps_EventId_is_read_before_or_after_its_data(long eventId)
    {
        var data = new byte[10_000];
        var before = Read(Request(7, "plugin.StepMultiMap", ("EventId", Int(eventId)), ("Data", Bin(data))), 64, 1000);
        var after = Read(Request(7, "plugin.Step", ("Data", Bin(data)), ("EventId", Int(eventId))), 64, 1000);
        foreach (var o in new[] { before, after })
        {
            Assert.Equal(7u, o.MsgId);
            Assert.True(o.IsStep);
            Assert.Equal(eventId, o.EventId);
        }
        // the last piece may be shorter than the key and its value: the kept tail spans pieces
        Assert.Equal(eventId, Read(Request(7, "plugin.Step", ("Data", Bin(data)), ("EventId", Int(eventId))), 64, 3).EventId);
    }

    [Fact]
    public void Bytes_inside_the_data_are_never_taken_for_the_EventId()
    {
        // the data ends with what an EventId key and value look like, and the real second key is another one
        byte[] lookalike = [0xa7, .. "EventId"u8, 0x05];
        var data = new byte[5000];
        lookalike.CopyTo(data, data.Length - lookalike.Length);
        var o = Read(Request(9, "plugin.Step", ("Data", Bin(data)), ("Other", Bin([1, 2]))), 64, 4096);
        Assert.Equal(9u, o.MsgId);
        Assert.Equal(-1, o.EventId);
        // and a map that is not Kong's two-key {EventId, Data} is not guessed at
        var three = Read(Request(9, "plugin.Step", ("Data", Bin(data)), ("X", Int(1)), ("EventId", Int(5))), 64, 4096);
        Assert.Equal(-1, three.EventId);
    }

    [Fact]
    public void Numbers_out_of_range_are_not_read_and_do_not_throw()
    {
        var data = new byte[5000];
        // an EventId above long's range, before and after the data
        var after = Read(Request(4, "plugin.Step", ("Data", Bin(data)), ("EventId", (object)ulong.MaxValue)), 64, 700);
        Assert.Equal(4u, after.MsgId);
        Assert.Equal(-1, after.EventId);
        var before = Read(Request(4, "plugin.Step", ("EventId", (object)ulong.MaxValue), ("Data", Bin(data))), 64, 700);
        Assert.Equal(-1, before.EventId);
        // a msgid above uint's range: not a request this server can answer
        byte[] hugeId = [0x94, 0x00, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xab, .. "plugin.Step"u8, 0x90];
        Assert.Null(Read(hugeId, 64, 64).MsgId);
    }

    [Fact]
    public void Other_requests_are_known_by_their_msgid_and_non_requests_by_nothing()
    {
        var start = Read(Request(3, "plugin.StartInstance", ("Name", (object)"echo"), ("Config", Bin(new byte[9000]))), 64, 512);
        Assert.Equal(3u, start.MsgId);
        Assert.False(start.IsStep);
        Assert.Equal(-1, start.EventId);
        // a method that is not a string (a bin32 where it goes): not a request
        byte[] notRequest = [0x94, 0x00, 0x01, 0xc6, 0x00, 0x10, 0x00, 0x00, .. new byte[64]];
        Assert.Null(Read(notRequest, 64, 64).MsgId);
    }
}
