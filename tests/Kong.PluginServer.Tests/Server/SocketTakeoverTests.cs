using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>
/// The socket file across a `kong reload` (docs/protocol.md#socket-file): a starting server takes the path over
/// from a live one; a stopping server removes the path only while it is still the file it bound.
/// </summary>
public class SocketTakeoverTests
{
    private static SimRequest Req(string v) => new() { Headers = { ["x-in"] = v, ["host"] = "h" } };

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_new_server_takes_over_a_live_socket_and_the_old_one_leaves_it_when_it_stops(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        var log = new StringWriter();
        var host = T.Host(plugin, protocol, configure: o => new ServerOptions
        {
            SocketPath = o.SocketPath, Protocol = o.Protocol, Log = new ServerLog(TextWriter.Synchronized(log), LogLevel.Info),
        });
        KongPluginServer? second = null;
        try
        {
            var entity = host.Kong.AddPlugin("{}");
            var worker = host.Kong.Worker(0);
            Assert.Equal(200, (await worker.RunAsync(entity, "access", Req("old")).Within()).Status);
            await using var pooled = await T.Connect(host); // an open connection to the old server
            var oldInode = SocketFile.TryIdentify(host.SocketPath, out _);

            second = new KongPluginServer(plugin, host.Server.Options);
            second.Start();

            Assert.False(SocketFile.TryIdentify(host.SocketPath, out _)!.Value.SameFile(oldInode!.Value));
            Assert.Contains("took over", log.ToString());
            // the old server still serves what it has; new connections reach the new server
            int before = await T.Start(protocol, pooled, "echo", "{}");
            Assert.True(host.Server.Registry.TryGet(before, out _));
            await using (var fresh = await T.Connect(host))
            {
                int id = await T.Start(protocol, fresh, "echo", "{}");
                Assert.True(second.Registry.TryGet(id, out _));
                Assert.False(host.Server.Registry.TryGet(id, out _));
            }

            await host.Server.StopAsync().Within();
            Assert.True(File.Exists(host.SocketPath), "the old server removed the new server's socket");
            Assert.Contains("belongs to another server", log.ToString());
            var r = await worker.RunAsync(entity, "access", Req("new")).Within(); // Kong replays on the new server
            Assert.True(r.Status == 200, r.ToString());
            Assert.Equal("new@h", r.UpstreamHeaders["x-out"]);
            Assert.True(second.Registry.TryGet(r.InstanceId!.Value, out _));

            await second.StopAsync().Within();
            Assert.False(File.Exists(host.SocketPath), "the last server leaves no socket file behind");
        }
        finally
        {
            host.Kong.Dispose();
            if (second is not null) await second.StopAsync().Within();
            await host.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_socket_file_keeps_its_mode_and_no_temporary_file_is_left()
    {
        await using var host = T.Host(new EchoPlugin(), configure: o => new ServerOptions
        {
            SocketPath = o.SocketPath, Protocol = o.Protocol, Log = o.Log, SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        var second = new KongPluginServer(new EchoPlugin(), host.Server.Options);
        try
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(host.SocketPath));
            Assert.Equal([Path.GetFileName(host.SocketPath)], Directory.GetFileSystemEntries(Path.GetDirectoryName(host.SocketPath)!).Select(Path.GetFileName));
        }
        finally
        {
            await second.StopAsync().Within();
        }
    }

    [Fact]
    public void A_regular_file_or_a_directory_at_the_path_is_refused()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kps-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, "x.socket");
            File.WriteAllText(file, "not a socket");
            var e = Assert.Throws<IOException>(() => new KongPluginServer(new EchoPlugin(), new ServerOptions { SocketPath = file, Log = ServerLog.Silent }));
            Assert.Contains("is not a socket", e.Message);
            Assert.Equal("not a socket", File.ReadAllText(file));

            string sub = Path.Combine(dir, "d.socket");
            Directory.CreateDirectory(sub);
            e = Assert.Throws<IOException>(() => new KongPluginServer(new EchoPlugin(), new ServerOptions { SocketPath = sub, Log = ServerLog.Silent }));
            Assert.Contains("is a directory", e.Message);
            Assert.Equal(2, Directory.GetFileSystemEntries(dir).Length); // nothing else left behind
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
