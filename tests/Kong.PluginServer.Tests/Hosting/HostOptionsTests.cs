using Kong.PluginServer.Hosting;
using Kong.PluginServer.Plugins;
using Kong.PluginServer.Server;

namespace Kong.PluginServer.Tests.Hosting;

/// <summary>The host's command line: every option, one dash or two, values inline or next; bad usage refused; the usage text.</summary>
public sealed class HostOptionsTests
{
    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var o = HostOptions.Parse([]);
        Assert.False(o.Dump);
        Assert.Null(o.DumpPlugin);
        Assert.False(o.Help);
        Assert.False(o.ShowVersion);
        Assert.Equal("/usr/local/kong", o.KongPrefix);
        Assert.Null(o.Socket);
        Assert.Equal("/usr/local/kong/x.socket", o.SocketPath("x.socket"));
        Assert.Equal(PluginDump.ProtoBuf, o.Protocol);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, o.SocketMode);
        Assert.Equal(LogLevel.Notice, o.LogLevel);
        Assert.Equal(64 * 1024, o.MaxFrameBytes);
        Assert.Equal(TimeSpan.FromHours(1), o.InstanceIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), o.ShutdownTimeout);
        Assert.Equal(4096, o.MaxConnections);
        Assert.Equal(ServerOptions.DefaultIoThreads, o.IoThreads);
        Assert.Equal(ServerOptions.DefaultIoSpin, o.IoSpin);
        Assert.Equal(TimeSpan.FromSeconds(30), o.FrameIdleTimeout);
    }

    [Theory]
    [InlineData("-")]
    [InlineData("--")]
    public void Every_option_is_read_with_one_dash_or_two(string dash)
    {
        var o = HostOptions.Parse([
            dash + "dump", dash + "dump-plugin", "b", dash + "kong-prefix", "/opt/kong", dash + "socket", "/run/k.sock",
            dash + "protocol", "MsgPack:1", dash + "socket-mode", "660", dash + "log-level", "debug", dash + "max-frame-bytes", "2048",
            dash + "instance-idle-timeout", "60", dash + "shutdown-timeout", "0", dash + "max-connections", "7", dash + "io-threads", "3",
            dash + "io-spin-us", "20", dash + "frame-idle-timeout", "5", dash + "help", dash + "version"]);
        Assert.True(o.Dump);
        Assert.Equal("b", o.DumpPlugin);
        Assert.Equal("/opt/kong", o.KongPrefix);
        Assert.Equal("/run/k.sock", o.Socket);
        Assert.Equal("/run/k.sock", o.SocketPath("ignored.socket"));
        Assert.Equal(PluginDump.MsgPack, o.Protocol);
        Assert.Equal((UnixFileMode)Convert.ToInt32("660", 8), o.SocketMode);
        Assert.Equal(LogLevel.Debug, o.LogLevel);
        Assert.Equal(2048, o.MaxFrameBytes);
        Assert.Equal(TimeSpan.FromSeconds(60), o.InstanceIdleTimeout);
        Assert.Equal(TimeSpan.Zero, o.ShutdownTimeout);
        Assert.Equal(7, o.MaxConnections);
        Assert.Equal(3, o.IoThreads);
        Assert.Equal(TimeSpan.FromMicroseconds(20), o.IoSpin);
        Assert.Equal(TimeSpan.FromSeconds(5), o.FrameIdleTimeout);
        Assert.True(o.Help);
        Assert.True(o.ShowVersion);

        var s = o.ToServerOptions("/run/k.sock", ServerLog.Silent);
        Assert.Equal(("/run/k.sock", PluginDump.MsgPack, 2048, 7, 3), (s.SocketPath, s.Protocol, s.MaxFrameBytes, s.MaxConnections, s.IoThreads));
        Assert.Equal((TimeSpan.FromSeconds(60), TimeSpan.Zero, TimeSpan.FromSeconds(5)), (s.InstanceIdleTimeout, s.ShutdownTimeout, s.FrameIdleTimeout));
        Assert.Equal(o.SocketMode, s.SocketMode);
        Assert.Equal(TimeSpan.FromMicroseconds(20), s.IoSpin);
    }

    [Fact]
    public void Values_may_follow_an_equals_sign_and_h_is_help()
    {
        var o = HostOptions.Parse(["--socket=/a/b.sock", "-protocol=MsgPack:1", "--socket-mode=0666", "-h"]);
        Assert.Equal("/a/b.sock", o.Socket);
        Assert.Equal(PluginDump.MsgPack, o.Protocol);
        Assert.Equal((UnixFileMode)Convert.ToInt32("666", 8), o.SocketMode);
        Assert.True(o.Help);
    }

    [Theory]
    [InlineData("unknown option '--bogus'", "--bogus")]
    [InlineData("unknown option '-x'", "-x")]
    [InlineData("unexpected argument 'serve'", "serve")]
    [InlineData("--protocol must be ProtoBuf:1 or MsgPack:1", "--protocol", "Grpc:1")]
    [InlineData("--protocol must be ProtoBuf:1 or MsgPack:1", "--protocol", "protobuf:1")]
    [InlineData("--socket-mode must be an octal mode", "--socket-mode", "999")]
    [InlineData("--socket-mode must be an octal mode", "--socket-mode", "1777")]
    [InlineData("--log-level", "--log-level", "loud")]
    [InlineData("--max-frame-bytes must be a whole number in 1024..", "--max-frame-bytes", "1000")]
    [InlineData("--instance-idle-timeout must be a whole number", "--instance-idle-timeout", "0")]
    [InlineData("--shutdown-timeout must be a whole number", "--shutdown-timeout", "soon")]
    [InlineData("--max-connections must be a whole number", "--max-connections", "99999999999")]
    [InlineData("--io-threads must be a whole number in 1..64", "--io-threads", "65")]
    [InlineData("--io-spin-us must be a whole number in 0..1000", "--io-spin-us", "1001")]
    [InlineData("--io-spin-us must be a whole number in 0..1000", "--io-spin-us", "2.5")]
    [InlineData("--frame-idle-timeout must be a whole number", "--frame-idle-timeout", "-1")]
    [InlineData("--socket needs a value", "--socket")]
    [InlineData("-kong-prefix needs a non-empty value", "-kong-prefix", "")]
    [InlineData("--dump-plugin needs a non-empty value", "--dump-plugin", " ")]
    [InlineData("--dump takes no value", "--dump=yes")]
    public void Bad_usage_is_a_usage_exception(string expected, params string[] args)
    {
        var e = Assert.Throws<UsageException>(() => HostOptions.Parse(args));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_products_options_are_parsed_with_the_hosts()
    {
        string? metrics = null;
        bool verbose = false;
        HostOption[] extra =
        [
            new("metrics-listen", "HOST:PORT", "metrics", v => metrics = v),
            new("verbose", "more", () => verbose = true) { Aliases = ["v"] },
        ];
        var o = HostOptions.Parse(["-metrics-listen", "127.0.0.1:9", "--protocol", "MsgPack:1", "-v"], extra);
        Assert.Equal("127.0.0.1:9", metrics);
        Assert.True(verbose);
        Assert.Equal(PluginDump.MsgPack, o.Protocol);
        Assert.Throws<ArgumentException>(() => HostOptions.Parse([], [new HostOption("socket", "P", "twice", _ => { })]));
    }

    [Fact]
    public void The_usage_text_lists_every_option_once()
    {
        HostOption[] extra = [new("metrics-listen", "HOST:PORT", "serve metrics\nsecond line", _ => { })];
        string usage = HostOptions.Usage("prog", "prog.socket", extra, [new HostUsage("demo", "a story")]);

        Assert.StartsWith("usage: prog [options]", usage);
        Assert.Contains("\n       prog -dump ", usage);
        Assert.Contains("\n       prog demo ", usage);
        Assert.Contains("socket at DIR/prog.socket", usage);
        var optionLines = usage.Split('\n').Where(l => l.StartsWith("  -", StringComparison.Ordinal)).ToList();
        foreach (var name in HostOptions.Names.Append("metrics-listen"))
        {
            Assert.Single(optionLines, l => l[..32].Split(' ', StringSplitOptions.RemoveEmptyEntries).Any(w => w.TrimEnd(',').TrimStart('-') == name));
        }
        Assert.Equal(HostOptions.Names.Count + 1, optionLines.Count);
        Assert.Contains("  -dump, --dump ", usage);
        Assert.Contains("  -kong-prefix DIR ", usage);
        Assert.Contains("  -h, --help ", usage);
        Assert.Contains("  --metrics-listen HOST:PORT    serve metrics\n                                second line", usage);
        // every option's description starts in one column
        Assert.All(optionLines, l => Assert.True(l.Length > 32 && l[31] == ' ' && l[32] != ' ', l));
        // the product's options come before --help and --version
        Assert.True(usage.IndexOf("--metrics-listen", StringComparison.Ordinal) < usage.IndexOf("--help", StringComparison.Ordinal));
    }
}
