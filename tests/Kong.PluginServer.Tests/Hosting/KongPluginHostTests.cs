using System.Text.Json;
using Kong.PluginServer.Hosting;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;
using Kong.PluginServer.Testing;
using Kong.PluginServer.Tests.Server;

namespace Kong.PluginServer.Tests.Hosting;

/// <summary>KongPluginHost.Run in-process: help, version, dump, subcommands, exit codes, socket naming, serving and stopping.</summary>
public sealed class KongPluginHostTests : IDisposable
{
    private readonly string _dir = Path.Combine("/tmp", "kph-" + Guid.NewGuid().ToString("N")[..12]);

    public KongPluginHostTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    private static Outcome Run(string[] args, KongPluginHostOptions? options, params IKongPlugin[] plugins)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var with = options ?? new KongPluginHostOptions();
        with = new KongPluginHostOptions
        {
            ProgramName = with.ProgramName ?? "prog",
            Version = with.Version,
            Commands = with.Commands,
            Options = with.Options,
            SelectPlugins = with.SelectPlugins,
            BeforeServe = with.BeforeServe,
            ServerBuilt = with.ServerBuilt,
            Stopped = with.Stopped,
            StopToken = with.StopToken,
            Out = o,
            Error = e,
        };
        int code = KongPluginHost.Run(args, with, plugins);
        return new Outcome(code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--protocol", "MsgPack:2")]
    [InlineData("-dump", "--protocol", "MsgPack:2")]
    [InlineData("--dump-plugin", "alpha")]
    [InlineData("-dump", "--dump-plugin", "gamma")]
    [InlineData("stray")]
    public void Bad_usage_exits_2_with_a_message_on_stderr_and_nothing_on_stdout(params string[] args)
    {
        var r = Run(["-kong-prefix", _dir, .. args], null, new StampPlugin("alpha"), new StampPlugin("beta"));
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("", r.Stdout); // Kong's cjson would choke on a half-printed dump
        Assert.StartsWith("prog: ", r.Stderr);
        Assert.Contains("run 'prog --help' for the options", r.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Help_and_version_exit_0()
    {
        var help = Run(["--help"], null, new StampPlugin("alpha", version: "2.3.4"));
        Assert.Equal(0, help.ExitCode);
        Assert.StartsWith("usage: prog [options]", help.Stdout);
        Assert.Contains("socket at DIR/alpha.socket", help.Stdout);
        Assert.Equal("", help.Stderr);

        var version = Run(["-version"], null, new StampPlugin("alpha", version: "2.3.4"));
        Assert.Equal((0, "2.3.4"), (version.ExitCode, version.Stdout.Trim()));
        var given = Run(["--version"], new KongPluginHostOptions { Version = "9.9.9" }, new StampPlugin("alpha"), new StampPlugin("beta"));
        Assert.Equal("9.9.9", given.Stdout.Trim());
    }

    [Theory]
    [InlineData("-dump")]
    [InlineData("--dump")]
    public void Dump_lists_every_plugin_served_in_one_line(string flag)
    {
        var r = Run([flag, "--protocol", "MsgPack:1"], null, new StampPlugin("alpha"), new StampPlugin("beta", KongPhase.Rewrite | KongPhase.Access));
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(1, r.Stdout.Count(c => c == '\n'));
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("MsgPack:1", doc.RootElement.GetProperty("Protocol").GetString());
        var plugins = doc.RootElement.GetProperty("Plugins");
        Assert.Equal(JsonValueKind.Array, plugins.ValueKind);
        Assert.Equal(["alpha", "beta"], plugins.EnumerateArray().Select(p => p.GetProperty("Name").GetString()));
        Assert.Equal(["rewrite", "access"], plugins[1].GetProperty("Phases").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal("beta", plugins[1].GetProperty("Schema").GetProperty("name").GetString());
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Dump_plugin_prints_only_that_plugin_for_a_Kong_39_pluginserver_entry()
    {
        var r = Run(["-dump", "-dump-plugin", "beta"], null, new StampPlugin("alpha"), new StampPlugin("beta"));
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("beta", doc.RootElement.GetProperty("Plugins").EnumerateArray().Single().GetProperty("Name").GetString());
    }

    [Fact]
    public void Socket_is_named_after_the_plugin_or_after_the_executable_when_there_are_several()
    {
        Assert.Equal("alpha.socket", KongPluginHost.SocketName([new StampPlugin("alpha")], "/usr/local/bin/my-server"));
        Assert.Equal("my-server.socket", KongPluginHost.SocketName([new StampPlugin("alpha"), new StampPlugin("beta")], "/usr/local/bin/my-server"));
        Assert.Equal("kong-plugin-server.socket", KongPluginHost.SocketName([new StampPlugin("alpha"), new StampPlugin("beta")], null));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Under_kong_prefix_the_socket_is_named_after_the_plugin_or_the_executable(int count)
    {
        IKongPlugin[] plugins = count == 1 ? [new StampPlugin("alpha")] : [new StampPlugin("alpha"), new StampPlugin("beta")];
        string expected = count == 1 ? "alpha.socket" : Path.GetFileNameWithoutExtension(Environment.ProcessPath!) + ".socket";
        using var stop = new CancellationTokenSource();
        var run = Task.Run(() => Run(["-kong-prefix", _dir], new KongPluginHostOptions { StopToken = stop.Token }, plugins));
        // the socket is bound under a temporary dot-name, then renamed into place
        await T.Until(() => Directory.GetFileSystemEntries(_dir).Any(e => !Path.GetFileName(e).StartsWith('.')) || run.IsCompleted, "the host to listen");
        if (run.IsCompleted) Assert.Fail((await run).ToString());

        Assert.Equal([expected], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
        stop.Cancel();
        Assert.Equal(0, (await run.WaitAsync(T.Bound)).ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Subcommands_run_before_parsing_and_their_usage_errors_exit_2()
    {
        string[]? seen = null;
        var options = new KongPluginHostOptions
        {
            Commands =
            [
                new HostCommand("hello", a => { seen = a; return 7; }, new HostUsage("hello ARGS", "says hello")),
                new HostCommand("bad", _ => throw new UsageException("bad: no")),
            ],
        };
        var r = Run(["hello", "--not-a-host-option", "x"], options, new StampPlugin("alpha"));
        Assert.Equal(7, r.ExitCode);
        Assert.Equal(["--not-a-host-option", "x"], seen!);

        var bad = Run(["bad"], options, new StampPlugin("alpha"));
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("prog: bad: no", bad.Stderr);

        var help = Run(["-h"], options, new StampPlugin("alpha"));
        Assert.Contains("\n       prog hello ARGS           says hello\n", help.Stdout);
        Assert.DoesNotContain("prog bad", help.Stdout);
    }

    [Fact]
    public void A_product_option_can_select_the_plugin_served()
    {
        string pick = "alpha";
        var options = new KongPluginHostOptions
        {
            Options = [new HostOption("plugin", "NAME", "which", v => pick = v == "gamma" ? throw new UsageException("--plugin: no gamma") : v)],
            SelectPlugins = all => [all.Single(p => p.Info.Name == pick)],
        };
        var r = Run(["-dump", "--plugin", "beta"], options, new StampPlugin("alpha"), new StampPlugin("beta"));
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("beta", doc.RootElement.GetProperty("Plugins").EnumerateArray().Single().GetProperty("Name").GetString());
        Assert.Contains("socket at DIR/beta.socket", Run(["--plugin", "beta", "--help"], options, new StampPlugin("alpha"), new StampPlugin("beta")).Stdout);
        Assert.Equal(2, Run(["--plugin", "gamma"], options, new StampPlugin("alpha")).ExitCode);
    }

    [Fact]
    public void A_socket_that_cannot_be_bound_exits_1_with_a_message()
    {
        bool stopped = false;
        var options = new KongPluginHostOptions { Stopped = _ => stopped = true };
        string missing = Path.Combine(_dir, "does-not-exist");
        var r = Run(["-kong-prefix", missing], options, new StampPlugin("alpha"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"cannot listen on {missing}/alpha.socket", r.Stderr);
        Assert.True(stopped);
    }

    [Fact]
    public void No_plugin_or_two_of_one_name_is_a_programming_error()
    {
        Assert.Throws<ArgumentException>(() => Run(["-dump"], null));
        Assert.Throws<ArgumentException>(() => Run(["-dump"], null, new StampPlugin("alpha"), new StampPlugin("alpha")));
    }

    [Fact]
    public void A_product_hook_can_refuse_to_serve()
    {
        var r = Run(["-kong-prefix", _dir], new KongPluginHostOptions { BeforeServe = _ => 1 }, new StampPlugin("alpha"));
        Assert.Equal(1, r.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [MemberData(nameof(T.Protocols), MemberType = typeof(T))]
    public async Task Serves_every_plugin_on_one_socket_and_drains_on_stop_with_exit_0(KongProtocol protocol)
    {
        using var stop = new CancellationTokenSource();
        var observer = new CountingObserver();
        KongPluginServer? built = null;
        bool stopped = false;
        var options = new KongPluginHostOptions
        {
            ProgramName = "multi",
            StopToken = stop.Token,
            BeforeServe = c =>
            {
                Assert.Equal(Path.Combine(_dir, "multi.socket"), c.SocketPath);
                c.Observer = observer;
                return null;
            },
            ServerBuilt = c => built = c.Server,
            Stopped = _ => stopped = true,
        };
        string socket = Path.Combine(_dir, "multi.socket");
        string[] args = ["--socket", socket, "--protocol", protocol == KongProtocol.ProtoBuf ? "ProtoBuf:1" : "MsgPack:1", "--log-level", "info"];
        var run = Task.Run(() => Run(args, options, new StampPlugin("alpha"), new StampPlugin("beta")));
        await T.Until(() => File.Exists(socket) || run.IsCompleted, "the host to listen");
        if (run.IsCompleted) Assert.Fail((await run).ToString());

        await using (var kongA = new KongSimulator(socket, protocol, "alpha"))
        await using (var kongB = new KongSimulator(socket, protocol, "beta"))
        {
            var a = await kongA.Worker(0).RunAsync(kongA.AddPlugin("""{"value":"1"}"""), "access", new SimRequest()).Within();
            var b = await kongB.Worker(0).RunAsync(kongB.AddPlugin("""{"value":"2"}"""), "access", new SimRequest()).Within();
            Assert.Equal("alpha:1:access", a.UpstreamHeaders["x-alpha"]);
            Assert.Equal("beta:2:access", b.UpstreamHeaders["x-beta"]);
        }
        Assert.NotNull(built);
        Assert.Equal(["alpha", "beta"], built.Plugins.Select(p => p.Info.Name));
        Assert.Equal(2, observer.Events);

        stop.Cancel();
        var outcome = await run.WaitAsync(T.Bound);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("", outcome.Stdout);
        Assert.Contains("serving alpha 1.0.0, beta 1.0.0", outcome.Stderr);
        Assert.Contains("instance ", outcome.Stderr);
        Assert.Contains("stopped", outcome.Stderr);
        Assert.False(File.Exists(socket), "the socket file was left behind");
        Assert.True(stopped);
    }

    private sealed class CountingObserver : IServerObserver
    {
        private int _events;
        public int Events => Volatile.Read(ref _events);
        public void EventCompleted(TimeSpan duration) => Interlocked.Increment(ref _events);
    }
}
