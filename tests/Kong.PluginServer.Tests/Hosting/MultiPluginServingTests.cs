using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Hosting;

/// <summary>
/// One server, several plugins (as Kong's JS and Python servers do): StartInstance's name picks the plugin, each
/// instance's events go to its plugin, an unknown name is refused the way each protocol reports an error.
/// </summary>
public sealed class MultiPluginServingTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine("/tmp", "kph-" + Guid.NewGuid().ToString("N")[..12]);
    private string Socket => Path.Combine(_dir, "multi.socket");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }

    private KongPluginServer Serve(KongProtocol protocol, params IKongPlugin[] plugins)
    {
        var server = new KongPluginServer(plugins, new ServerOptions
        {
            SocketPath = Socket,
            Protocol = protocol == KongProtocol.ProtoBuf ? PluginDump.ProtoBuf : PluginDump.MsgPack,
            Log = ServerLog.Silent,
        });
        server.Start();
        return server;
    }

    private KongSimulator Kong(KongProtocol protocol, string plugin, int workers = 1) =>
        new(Socket, protocol, plugin, workers, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(10) });

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Each_instance_is_served_by_the_plugin_it_was_started_for(KongProtocol protocol)
    {
        var alpha = new StampPlugin("alpha");
        var beta = new StampPlugin("beta", KongPhase.Rewrite | KongPhase.Access);
        var server = Serve(protocol, alpha, beta);
        try
        {
            await using var kongA = Kong(protocol, "alpha", workers: 2);
            await using var kongB = Kong(protocol, "beta", workers: 2);
            // the same config for both: two plugins never share a handler
            var a = kongA.AddPlugin("""{"value":"same"}""");
            var b = kongB.AddPlugin("""{"value":"same"}""");
            var b2 = kongB.AddPlugin("""{"value":"other"}""");

            for (int w = 0; w < 2; w++)
            {
                var ra = await kongA.Worker(w).RunAsync(a, "access", new SimRequest()).Within();
                Assert.True(ra.Status == 200, ra.ToString());
                Assert.Equal("alpha:same:access", ra.UpstreamHeaders["x-alpha"]);
                Assert.Null(ra.UpstreamHeaders["x-beta"]);

                var rb = await kongB.Worker(w).RunAsync(b, "rewrite", new SimRequest()).Within();
                Assert.True(rb.Status == 200, rb.ToString());
                Assert.Equal("beta:same:rewrite", rb.UpstreamHeaders["x-beta"]);
                Assert.NotEqual(ra.InstanceId, rb.InstanceId);

                var rb2 = await kongB.Worker(w).RunAsync(b2, "access", new SimRequest()).Within();
                Assert.Equal("beta:other:access", rb2.UpstreamHeaders["x-beta"]);

                // alpha does not declare rewrite: its instance's rewrite event is answered as an empty event
                var none = await kongA.Worker(w).RunAsync(a, "rewrite", new SimRequest()).Within();
                Assert.True(none.Status == 200, none.ToString());
                Assert.Null(none.UpstreamHeaders["x-alpha"]);
            }

            Assert.Equal(6, server.Registry.Count);                 // 3 entities x 2 workers
            Assert.Equal(3, server.Registry.HandlerCount);          // alpha/same, beta/same, beta/other
            Assert.Equal(1, alpha.HandlersCreated);
            Assert.Equal(2, beta.HandlersCreated);
            Assert.True(server.Registry.TryGet(kongA.Worker(0).CachedInstanceId(a) ?? 0, out var ia));
            Assert.Same(alpha, ia.Plugin);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_plugin_the_server_does_not_serve_is_refused_and_the_others_keep_working(KongProtocol protocol)
    {
        var server = Serve(protocol, new StampPlugin("alpha"), new StampPlugin("beta"));
        try
        {
            await using var stranger = Kong(protocol, "gamma");
            var g = stranger.AddPlugin("{}");
            var r = await stranger.Worker(0).RunAsync(g, "access", new SimRequest()).Within();

            // ProtoBuf:1: closed without an answer; MsgPack:1: an error naming the plugin. Either way Kong raises: 500
            Assert.True(r.Status == 500, r.ToString());
            Assert.Null(r.InstanceId);
            Assert.Equal(0, r.Retries); // never "no plugin instance", which would make Kong replay
            if (protocol == KongProtocol.MsgPack) Assert.Contains("no plugin named 'gamma'", r.Error);
            Assert.Equal(0, server.Registry.Count);

            await using var kong = Kong(protocol, "beta");
            var b = kong.AddPlugin("""{"value":"x"}""");
            var ok = await kong.Worker(0).RunAsync(b, "access", new SimRequest()).Within();
            Assert.Equal("beta:x:access", ok.UpstreamHeaders["x-beta"]);
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_single_plugin_server_refuses_another_name_too(KongProtocol protocol)
    {
        await using var host = T.Host(new StampPlugin("alpha"), protocol);
        var server = host.Server;
        await using var kong = new KongSimulator(host.SocketPath, protocol, "beta", 1, new KongSimulatorOptions { Timeout = TimeSpan.FromSeconds(10) });
        var r = await kong.Worker(0).RunAsync(kong.AddPlugin("{}"), "access", new SimRequest()).Within();
        Assert.True(r.Status == 500, r.ToString());
        Assert.Equal(0, server.Registry.Count);

        var ok = await host.Kong.Worker(0).RunAsync(host.Kong.AddPlugin("{}"), "access", new SimRequest()).Within();
        Assert.Equal("alpha:v:access", ok.UpstreamHeaders["x-alpha"]);
    }

    [Fact]
    public void Two_plugins_of_one_name_or_none_are_refused()
    {
        var options = new ServerOptions { SocketPath = Socket, Log = ServerLog.Silent };
        Assert.Throws<ArgumentException>(() => new KongPluginServer([new StampPlugin("a"), new StampPlugin("a")], options));
        Assert.Throws<ArgumentException>(() => new KongPluginServer(Array.Empty<IKongPlugin>(), options));
        Assert.False(File.Exists(Socket));
    }
}
