using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;

namespace GitLabCiAuth.Host.Tests;

/// <summary>The command line: bad input is a clear message on stderr and exit code 2; --help is exit 0.</summary>
public sealed class CliTests
{
    // every option's parsing is unit-tested with the library's parser (tests/Kong.PluginServer.Tests/Hosting/HostOptionsTests.cs);
    // here, through the binary: a few of the host's own options, and gitlab-ci-auth's additions
    [Theory]
    [InlineData("unknown option '--bogus'", "--bogus")]
    [InlineData("unexpected argument 'serve'", "serve")]
    [InlineData("--protocol must be ProtoBuf:1 or MsgPack:1", "--protocol", "Grpc:1")]
    [InlineData("--socket-mode must be an octal mode", "--socket-mode", "rw")]
    [InlineData("--socket needs a value", "--socket")]
    [InlineData("-kong-prefix needs a non-empty value", "-kong-prefix", "")]
    [InlineData("--plugin must be gitlab-ci-auth or example", "--plugin", "nope")]
    [InlineData("unknown option '--dumpp'", "--dumpp")]
    public async Task Bad_command_lines_exit_2_with_a_message_on_stderr(string expected, params string[] args)
    {
        using var dir = new TempDir();
        // the prefix keeps a wrongly accepted command line from serving anywhere else (it would then hang, and fail on the bound)
        string[] full = ["-kong-prefix", dir.Path, .. args];
        var run = await HostProcess.RunAsync(full);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal("", run.Stdout);
        Assert.Contains(expected, run.Stderr);
        Assert.StartsWith("gitlab-ci-auth: ", run.Stderr);
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public async Task A_bad_flag_is_refused_even_with_dump()
    {
        var run = await HostProcess.RunAsync("-dump", "--protocol", "MsgPack:2");

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal("", run.Stdout); // Kong's cjson would choke on a half-printed dump
        Assert.Contains("MsgPack:2", run.Stderr);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("-help")]
    public async Task Help_exits_0_and_lists_the_options(string flag)
    {
        using var dir = new TempDir();
        var run = await HostProcess.RunAsync(flag, "-kong-prefix", dir.Path);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.StartsWith("usage: gitlab-ci-auth", run.Stdout);
        foreach (var option in new[] { "-dump", "-kong-prefix", "--socket", "--protocol", "--socket-mode", "--log-level", "--shutdown-timeout" })
            Assert.Contains(option, run.Stdout);
        Assert.Equal("", run.Stderr);
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public async Task Help_lists_every_option_once_in_one_column()
    {
        var run = await HostProcess.RunAsync("--help");

        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Stdout.Split('\n').Where(l => l.StartsWith("  -", StringComparison.Ordinal)).ToList();
        string[] options = ["dump", "dump-plugin", "kong-prefix", "socket", "protocol", "socket-mode", "log-level", "max-frame-bytes",
            "instance-idle-timeout", "shutdown-timeout", "max-connections", "io-threads", "io-spin-us", "frame-idle-timeout", "metrics-listen", "plugin", "help", "version"];
        foreach (var option in options)
            Assert.Single(lines, l => l[..32].Split(' ', StringSplitOptions.RemoveEmptyEntries).Any(w => w.TrimEnd(',').TrimStart('-') == option));
        Assert.Equal(options.Length, lines.Count);
        foreach (var command in new[] { "gitlab-ci-auth -dump", "gitlab-ci-auth demo", "gitlab-ci-auth check --lint FILE" })
            Assert.Contains(command, run.Stdout);
    }

    [Fact]
    public async Task The_READMEs_command_line_reference_is_the_usage_text()
    {
        var run = await HostProcess.RunAsync("--help");

        Assert.True(run.ExitCode == 0, run.ToString());
        string readme = File.ReadAllText(Path.Combine(HostBinary.FindRepoRoot(), "README.md"));
        Assert.Contains("```\n" + run.Stdout + "```\n", readme);
    }

    [Fact]
    public async Task Version_prints_the_version()
    {
        var run = await HostProcess.RunAsync("--version");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Matches(@"^\d+\.\d+\.\d+\n$", run.Stdout);
    }

    [Fact]
    public async Task A_missing_socket_directory_fails_with_a_message()
    {
        using var dir = new TempDir();
        var run = await HostProcess.RunAsync("-kong-prefix", dir.Combine("does-not-exist"));

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Contains("does-not-exist", run.Stderr);
    }
}
