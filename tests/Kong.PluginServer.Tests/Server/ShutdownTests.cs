using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>StopAsync: in-flight events finish, the socket goes away, new connections are refused.</summary>
public class ShutdownTests
{
    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Stop_lets_the_event_in_flight_finish_then_removes_the_socket(KongProtocol protocol)
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin, protocol);
        var entity = host.Kong.AddPlugin("""{"mode":"gate"}""");
        var inFlight = host.Kong.Worker(0).RunAsync(entity, "access");
        await plugin.Entered.Task.Within();

        var stop = host.Server.StopAsync();
        Assert.True(host.Server.Stopping);
        // no new connection from now on (the listener is gone; .NET also unlinks its socket file)
        var refused = await Assert.ThrowsAsync<KongSocketException>(() => KongConnection.ConnectAsync(host.SocketPath, T.Bound)).Within();
        Assert.Contains(refused.KongError, new[] { "connection refused", "no such file or directory" });
        Assert.False(stop.IsCompleted, "the stop waits for the event in flight");

        plugin.Gate.SetResult();
        var r = await inFlight.Within();
        Assert.True(r.Status == 200, r.ToString());
        Assert.Equal(SimOutcome.Completed, r.Outcome);
        Assert.Equal("open", r.UpstreamHeaders["x-gate"]);
        await stop.Within();

        Assert.False(File.Exists(host.SocketPath));
        Assert.Equal(0, host.Server.InFlightEvents);
        await T.Until(() => host.Server.ActiveConnections == 0, "the closed connections' threads are done");
        var gone = await Assert.ThrowsAsync<KongSocketException>(() => KongConnection.ConnectAsync(host.SocketPath, T.Bound)).Within();
        Assert.Equal("no such file or directory", gone.KongError);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Stop_closes_idle_connections(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol);
        await using var c = await T.Connect(host);
        await T.Start(protocol, c, "echo", "{}");
        await host.Server.StopAsync().Within();
        Assert.True(await c.WaitForCloseAsync(T.Bound));
        Assert.False(File.Exists(host.SocketPath));
    }

    [Fact]
    public async Task ProtoBuf_no_new_event_starts_once_stopping()
    {
        var plugin = new EchoPlugin();
        await using var host = T.Host(plugin);
        await using var idle = await T.Connect(host);
        int id = await T.StartPb(idle, 2, "echo", "{}");
        var entity = host.Kong.AddPlugin("""{"mode":"gate"}""");
        var inFlight = host.Kong.Worker(0).RunAsync(entity, "access");
        await plugin.Entered.Task.Within();
        var stop = host.Server.StopAsync();

        // an event on a connection opened before the stop: closed before anything runs (Kong would replay elsewhere)
        await idle.SendFrameAsync(KongWire.HandleEvent(3, id, "access")).Within();
        Assert.True(await idle.WaitForCloseAsync(T.Bound));
        Assert.Equal(0, idle.BufferedBytes);

        plugin.Gate.SetResult();
        Assert.Equal(200, (await inFlight.Within()).Status);
        await stop.Within();
    }
}
