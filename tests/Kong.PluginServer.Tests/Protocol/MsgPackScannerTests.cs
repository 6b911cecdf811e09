using System.Buffers;
using System.Diagnostics;
using Kong.PluginServer.Framing;
using Kong.PluginServer.Protocol.MsgPack;
using MessagePack;

namespace Kong.PluginServer.Tests.Protocol;

/// <summary>The resumable scan that delimits MsgPack:1 requests: exact lengths however the bytes arrive, linear time.</summary>
public class MsgPackScannerTests
{
    private static byte[] Sample(int seed, int bigString = 0)
    {
        var rng = new Random(seed);
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(4);
        w.Write(0);
        w.Write((uint)rng.Next());
        w.Write("plugin.StepMultiMap");
        w.WriteArrayHeader(1);
        w.WriteMapHeader(3);
        w.Write("EventId"); w.Write(rng.Next());
        w.Write("Data");
        int n = rng.Next(0, 40);
        w.WriteMapHeader(n);
        for (int i = 0; i < n; i++)
        {
            w.Write("h" + i);
            w.WriteArrayHeader(2);
            w.Write(new string('v', rng.Next(0, 300)));
            w.Write(rng.NextDouble());
        }
        w.Write("Extra");
        w.WriteArrayHeader(8);
        w.WriteNil(); w.Write(true); w.Write(-5); w.Write(long.MaxValue); w.Write(1.5f);
        w.Write(new byte[rng.Next(0, 70_000)]);
        w.WriteExtensionFormat(new ExtensionResult(3, new byte[rng.Next(1, 20)]));
        w.Write(new string('s', bigString));
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void A_message_arriving_in_pieces_is_delimited_exactly(int maxChunk)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var message = Sample(seed);
            var stream = message.Concat(Sample(seed + 100)).ToArray(); // a second message right behind it
            var scanner = new MsgPackScanner();
            var rng = new Random(seed);
            int have = 0;
            long length = -1;
            while (length < 0)
            {
                Assert.True(have < stream.Length, "the scan never completed");
                have = Math.Min(stream.Length, have + rng.Next(1, maxChunk + 1));
                length = scanner.Scan(stream.AsSpan(0, have));
            }
            Assert.Equal(message.Length, length);
        }
    }

    [Fact]
    public void Bytes_that_start_no_type_are_refused()
    {
        Assert.Throws<ProtocolViolationException>(() => new MsgPackScanner().Scan(new byte[] { 0x94, 0x00, 0xc1 }));
    }

    [Fact]
    public void A_discarded_message_is_passed_over_without_its_bytes()
    {
        // the caller drops what was scanned (Rebase) and hands in only the bytes after it, as when a message is
        // over the maximum: a 1 MiB string is passed over by count
        var message = Sample(3, bigString: 1 << 20);
        var scanner = new MsgPackScanner();
        long length = -1;
        int offset = 0;
        while (length < 0)
        {
            length = scanner.Scan(message.AsSpan(offset, Math.Min(997, message.Length - offset)));
            int scanned = scanner.ScannedUnconsumed;
            scanner.Rebase(scanned);
            offset += scanned;
        }
        Assert.Equal(message.Length, length);
    }

    [Fact]
    public void Scanning_is_linear_in_the_message_size()
    {
        // 2 MiB of small elements fed 16 bytes at a time: a scan that restarted from the first byte would take minutes
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(200_000);
        for (int i = 0; i < 200_000; i++) w.Write("0123456789");
        w.Flush();
        var message = buffer.WrittenSpan.ToArray();
        var scanner = new MsgPackScanner();
        var clock = Stopwatch.StartNew();
        long length = -1;
        for (int have = 16; length < 0; have = Math.Min(message.Length, have + 16))
            length = scanner.Scan(message.AsSpan(0, have));
        Assert.Equal(message.Length, length);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{clock.Elapsed.TotalMilliseconds:0} ms for {message.Length} bytes");
    }
}
