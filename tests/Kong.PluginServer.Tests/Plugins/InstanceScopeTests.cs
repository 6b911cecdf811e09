using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Plugins;

/// <summary>The scope Kong puts in the instance config (docs/protocol.md#instance-config), per event without a PDK call.</summary>
public partial class InstanceScopeTests
{
    [Fact]
    public void The_scope_is_read_from_Kong_s_keys_and_the_key_fills_in_what_is_missing()
    {
        var s = InstanceScope.Read("""
            {"header":"x","route_id":"r-1","service_id":"s-1","__plugin_id":"p-1","plugin_instance_name":"ci",
             "tags":{"nested":{"route_id":"not this"}},"__key__":"plugins:echo:r-1:s-1:::ws","__seq__":3}
            """u8);
        Assert.Equal(new InstanceScope("r-1", "s-1", null, "p-1", "ci"), s);

        // Kong 2.x wrote only __key__ for some scopes: plugins:<name>:<route_id>:<service_id>:<consumer_id>::<ws_id>
        Assert.Equal(new InstanceScope("r-2", null, "c-2", null, null), InstanceScope.Read("""{"__key__":"plugins:echo:r-2::c-2::ws"}"""u8));
        Assert.Same(InstanceScope.None, InstanceScope.Read("""{"header":"x"}"""u8));
        Assert.Same(InstanceScope.None, InstanceScope.Read("""{"route_id":null,"__key__":"plugins:echo:::::ws"}"""u8));
        Assert.Same(InstanceScope.None, InstanceScope.Read("not json"u8));
        Assert.Same(InstanceScope.None, InstanceScope.Read("[1]"u8));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Each_event_sees_its_own_instance_s_route_though_equal_configs_share_one_handler(KongProtocol protocol)
    {
        var plugin = new RoutePlugin();
        await using var host = T.Host(plugin, protocol);
        string routeA = Guid.NewGuid().ToString(), routeB = Guid.NewGuid().ToString();
        var a = host.Kong.AddPlugin("{}", routeId: routeA);
        var b = host.Kong.AddPlugin("{}", routeId: routeB);
        var global = host.Kong.AddPlugin("{}");

        foreach (var (entity, expected) in new[] { (a, routeA), (b, routeB), (global, "-"), (a, routeA) })
        {
            var r = await host.Kong.Worker(0).RunAsync(entity, "access").Within();
            Assert.True(r.Status == 200, r.ToString());
            Assert.Equal(expected, r.UpstreamHeaders["x-route"]);
            Assert.Equal(["kong.service.request.set_header"], r.PdkCalls); // no PDK call to learn the route
        }
        Assert.Equal(1, host.Server.Registry.HandlerCount);
        Assert.Equal(1, plugin.Handlers);
    }

    [KongConfig]
    public sealed partial class RouteConfig;

    private sealed class RoutePlugin : KongPlugin<RouteConfig>
    {
        public int Handlers;
        public override string Name => "route";
        public override string Version => "1.0.0";
        public override int Priority => 1;
        public override KongPhase Phases => KongPhase.Access;
        protected override IPluginHandler CreateHandler(RouteConfig config)
        {
            Interlocked.Increment(ref Handlers);
            return new Handler();
        }

        private sealed class Handler : PluginHandler
        {
            public override async ValueTask AccessAsync(KongPdk kong) =>
                await kong.ServiceRequest.SetHeaderAsync("x-route", kong.Scope.RouteId ?? "-");
        }
    }
}
