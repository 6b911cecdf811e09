using System.Net.Sockets;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>
/// Kong 3.1-3.4 workers probe the socket by connecting and closing, every 0.1 s for up to 20 s; other clients
/// give up mid-frame. The server must stay healthy and must not leak a descriptor per connection.
/// </summary>
public sealed class ProbeTests
{
    private const int Probes = 3000;
    private const int Parallel = 4;
    private const int FdSlack = 4;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task Connect_and_close_probes_leave_the_server_healthy_without_leaking_descriptors(KongProtocol protocol)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket,
            "--plugin", "example", "--protocol", Example.Args(protocol), "-kong-prefix", dir.Path);
        await Example.AssertServesAsync(dir.ExampleSocket, protocol); // warm up: instance, threads, pools
        int baseline = await SettledFdsAsync(host.Pid, atMost: int.MaxValue);

        int done = 0;
        var probers = Enumerable.Range(0, Parallel).Select(t => Task.Run(async () =>
        {
            var rnd = new Random(t);
            for (int i = 0; i < Probes / Parallel; i++)
            {
                using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(dir.ExampleSocket));
                switch (i % 16)
                {
                    case 7: // gives up inside a frame length
                        await s.SendAsync(new byte[] { 0x0f, 0x00 }, SocketFlags.None);
                        break;
                    case 11: // gives up inside a frame body
                        await s.SendAsync(new byte[] { 0x0f, 0x00, 0x00, 0x00, 0x08, 0x03 }, SocketFlags.None);
                        break;
                    case 15:
                        // half-close and wait for the server to close its side: the accept queue is FIFO, so every
                        // earlier probe has been accepted by then (keeps the flood within the listen backlog)
                        s.Shutdown(SocketShutdown.Send);
                        using (var cts = new CancellationTokenSource(Bound))
                            Assert.Equal(0, await s.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));
                        break;
                }
                if (rnd.Next(2) == 0) s.Shutdown(SocketShutdown.Both);
                s.Close();
                Interlocked.Increment(ref done);
            }
        })).ToArray();
        await Task.WhenAll(probers).WaitAsync(Bound);
        Assert.Equal(Probes, done);

        Assert.False(host.HasExited, host.Stderr);
        await Example.AssertServesAsync(dir.ExampleSocket, protocol);
        int after = await SettledFdsAsync(host.Pid, atMost: baseline + FdSlack);
        Assert.True(after <= baseline + FdSlack, $"open descriptors: {baseline} before {Probes} probes, {after} after");
        Assert.DoesNotContain(" error ", host.Stderr);
        Assert.Equal("", host.Stdout);
    }

    /// <summary>
    /// The descriptor count once connection threads have finished closing: waits (bounded) until it is at most
    /// <paramref name="atMost"/> and unchanged over consecutive reads; returns the last count either way.
    /// </summary>
    private static async Task<int> SettledFdsAsync(int pid, int atMost)
    {
        var deadline = DateTime.UtcNow + Bound;
        int last = Posix.OpenFds(pid), stable = 0;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            int now = Posix.OpenFds(pid);
            stable = now == last && now <= atMost ? stable + 1 : 0;
            last = now;
            if (stable >= 4) break;
        }
        return last;
    }
}
