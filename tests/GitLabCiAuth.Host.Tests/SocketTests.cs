using System.Text.RegularExpressions;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>Where and how the binary listens, stale and live sockets, and where its logs go.</summary>
public sealed class SocketTests
{
    private const UnixFileMode Mode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Kong_prefix_puts_the_socket_in_the_prefix_with_mode_0600()
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path);

        Assert.Equal(["example.socket"], dir.Entries());
        // Kong's worker 0 starts the server as the workers' user: only that user needs to connect
        Assert.Equal(Mode600, File.GetUnixFileMode(dir.ExampleSocket));
        await Example.AssertServesAsync(dir.ExampleSocket);
    }

    [Theory]
    [InlineData("660", 0x1B0)]
    [InlineData("0666", 0x1B6)]
    [InlineData("0600", 0x180)]
    public async Task Socket_mode_is_honoured(string mode, int expected)
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path, "--socket-mode", mode);

        Assert.Equal((UnixFileMode)expected, File.GetUnixFileMode(dir.ExampleSocket));
        await Example.AssertServesAsync(dir.ExampleSocket);
    }

    [Fact]
    public async Task Socket_flag_names_the_socket_and_overrides_the_prefix()
    {
        using var dir = new TempDir();
        using var prefix = new TempDir();
        var socket = dir.Combine("custom-name.sock");
        await using var host = await HostProcess.ServeAsync(socket, "--plugin", "example", "--socket", socket, "-kong-prefix", prefix.Path);

        Assert.Empty(prefix.Entries());
        Assert.Equal(Mode600, File.GetUnixFileMode(socket));
        await Example.AssertServesAsync(socket);
    }

    [Fact]
    public async Task A_stale_socket_file_is_removed_and_replaced()
    {
        using var dir = new TempDir();
        Posix.CreateStaleSocket(dir.ExampleSocket);
        File.SetUnixFileMode(dir.ExampleSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        Assert.False(Posix.IsListening(dir.ExampleSocket));

        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path);

        Assert.Equal(Mode600, File.GetUnixFileMode(dir.ExampleSocket)); // a new socket, not the old file
        await Example.AssertServesAsync(dir.ExampleSocket);
    }

    [Fact]
    public async Task A_second_server_on_a_live_socket_takes_it_over_and_the_first_keeps_its_connections()
    {
        using var dir = new TempDir();
        await using var first = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path);
        await using var kong = Example.Simulator(dir.ExampleSocket);
        var entity = kong.AddPlugin("{}");
        var before = await Example.AssertServesAsync(kong, entity, "before");

        // Kong's reload: the new worker 0 starts a server while the old one still serves
        await using var second = await HostProcess.StartAsync("--plugin", "example", "-kong-prefix", dir.Path, "--log-level", "info");
        await second.WaitUntilOwnsAsync(dir.ExampleSocket);

        await second.WaitForStderrAsync("took over"); // the line may reach us a moment after the socket does
        Assert.False(first.HasExited);
        Assert.Equal(Mode600, File.GetUnixFileMode(dir.ExampleSocket));
        Assert.Equal(["example.socket"], dir.Entries()); // no temporary name left behind
        var after = await Example.AssertServesAsync(kong, entity, "after"); // the pooled connection still reaches the first
        Assert.Equal(before.InstanceId, after.InstanceId);
        Assert.Equal(0, after.Retries);

        first.Signal(Posix.SIGTERM); // the old worker 0 stops its server
        Assert.Equal(0, await first.WaitForExitAsync(ExitBound));
        Assert.True(File.Exists(dir.ExampleSocket), "the old server removed the new server's socket");
        Assert.Equal(second.Pid, Posix.ListenerPid(dir.ExampleSocket));
        await Example.AssertServesAsync(dir.ExampleSocket);

        second.Signal(Posix.SIGTERM);
        Assert.Equal(0, await second.WaitForExitAsync(ExitBound));
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public async Task Logs_go_to_stderr_only_one_line_per_record()
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path, "--log-level", "debug");
        await using (var kong = Example.Simulator(dir.ExampleSocket, workers: 2))
        {
            var entity = kong.AddPlugin("{}");
            for (int i = 0; i < 10; i++)
            {
                await Example.AssertServesAsync(kong, entity, "v" + i, worker: i % 2);
                var denied = await kong.Worker(i % 2).RunAsync(entity, "access", Example.Request("deny"));
                Assert.Equal(403, denied.Status);
            }
            kong.UpdateConfig(entity, """{"greeting":"hi"}""");
            var r = await kong.Worker(0).RunAsync(entity, "access", Example.Request("x"));
            Assert.Equal("hi x@api.test", r.UpstreamHeaders["x-example"]);
        }
        Assert.Equal("", host.Stdout); // while serving

        host.Signal(Posix.SIGTERM);
        Assert.Equal(0, await host.WaitForExitAsync(ExitBound));

        Assert.Equal("", host.Stdout);
        var lines = host.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.Matches(new Regex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|notice|warn|error) \S"), l));
        Assert.Contains(lines, l => l.Contains("serving example", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" started", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Log_level_off_writes_nothing_at_all()
    {
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.ExampleSocket, "--plugin", "example", "-kong-prefix", dir.Path, "--log-level", "off");
        await Example.AssertServesAsync(dir.ExampleSocket);

        host.Signal(Posix.SIGTERM);
        Assert.Equal(0, await host.WaitForExitAsync(ExitBound));
        Assert.Equal("", host.Stdout);
        Assert.Equal("", host.Stderr);
    }
}
