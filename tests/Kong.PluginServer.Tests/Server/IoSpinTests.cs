using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;

namespace Kong.PluginServer.Tests.Server;

/// <summary>
/// <see cref="ServerOptions.IoSpin"/>: an event loop that served input polls for the configured time before it sleeps;
/// an idle loop only sleeps (it never polls without input), and 0 turns polling off.
/// </summary>
public class IoSpinTests
{
    private static async Task ServeEvents(PluginTestHost host, int count)
    {
        var entity = host.Kong.AddPlugin("""{"header":"x-in","mode":"echo"}""");
        for (int i = 0; i < count; i++)
        {
            var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-in"] = "v" } }).Within();
            Assert.True(r.Outcome == SimOutcome.Completed, r.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task A_loop_polls_after_serving_input_and_then_sleeps_without_polling(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol, configure: o => o.With(spin: TimeSpan.FromMilliseconds(1)));
        await ServeEvents(host, 5);
        await Task.Delay(100); // past every 1 ms spin window

        var served = host.Server.IoSpinCounts;
        Assert.True(served.Polls > 0, $"polls after serving input: {served}");
        await Task.Delay(300);
        // idle: no input, so the loop sleeps in epoll_wait; its periodic wake-ups (the idle-frame tick) do not poll
        Assert.Equal(served.Polls, host.Server.IoSpinCounts.Polls);
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Zero_turns_polling_off(KongProtocol protocol)
    {
        await using var host = T.Host(new EchoPlugin(), protocol, configure: o => o.With(spin: TimeSpan.Zero));
        await ServeEvents(host, 5);
        var counts = host.Server.IoSpinCounts;
        Assert.Equal(0, counts.Polls);
        Assert.True(counts.Sleeps > 0, counts.ToString());
    }

    [Fact]
    public void The_default_is_10_microseconds_and_the_host_reads_it()
    {
        Assert.Equal(TimeSpan.FromMicroseconds(10), ServerOptions.DefaultIoSpin);
        Assert.Equal(ServerOptions.DefaultIoSpin, new ServerOptions { SocketPath = "/x" }.IoSpin);
        Assert.Equal(ServerOptions.DefaultIoSpin, Kong.PluginServer.Hosting.HostOptions.Parse([]).IoSpin);
    }
}
