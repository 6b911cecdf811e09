using Kong.PluginServer.Testing;

namespace HeaderAuth.Tests;

/// <summary>The sample's behaviour as Kong sees it, on both protocols, through the simulator.</summary>
public sealed class HeaderAuthPluginTests
{
    public static TheoryData<KongProtocol> Protocols => [KongProtocol.ProtoBuf, KongProtocol.MsgPack];

    private static readonly SimConsumer Ada = new() { Id = "3f0c4a9e-7c1b-4f7e-9d1a-2b5c6d7e8f90", Username = "ada" };
    private static readonly SimConsumer Guest = new() { Id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Username = "guest" };

    private static string Config(string? anonymous = null, bool hide = true, string user = "ada") =>
        $$"""{"keys":{"{{HeaderAuthPlugin.Hash("s3cret")}}":"{{user}}"},"hide_credentials":{{(hide ? "true" : "false")}}{{(anonymous is null ? "" : $",\"anonymous\":\"{anonymous}\"")}}}""";

    private static async Task<PluginTestHost> StartAsync(KongProtocol protocol)
    {
        var host = PluginTestHost.Start(new HeaderAuthPlugin(), protocol);
        host.Kong.Consumers.Add(Ada);
        host.Kong.Consumers.Add(Guest);
        await Task.CompletedTask;
        return host;
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_known_key_authenticates_its_consumer_hides_the_key_and_the_log_phase_names_the_consumer(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin(Config());
        var request = new SimRequest { Headers = { ["x-api-key"] = "s3cret", ["x-anonymous-consumer"] = "true" } };

        var access = await host.Kong.Worker(0).RunAsync(entity, "access", request);

        Assert.Equal(200, access.Status);
        Assert.Null(access.Exit);
        Assert.Equal("ada", access.Consumer?.Username);
        Assert.Equal("key-" + HeaderAuthPlugin.Hash("s3cret")[..32], access.Credential?.Id);
        Assert.Null(access.UpstreamHeaders["x-api-key"]);
        Assert.Null(access.UpstreamHeaders["x-anonymous-consumer"]);   // a client-sent claim of being anonymous is removed
        Assert.Equal("ada", access.UpstreamHeaders["x-consumer-username"]);
        Assert.Equal("ada", access.CtxShared[HeaderAuthPlugin.SharedConsumerKey]);

        var log = await host.Kong.Worker(0).RunAsync(entity, "log", request.NextPhase(access));
        Assert.Contains(log.Logs, l => l.Level == "notice" && l.Message.Contains("consumer=ada status=200", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_missing_or_unknown_key_is_401_without_an_anonymous_consumer(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin(Config());

        var missing = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest());
        var unknown = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-api-key"] = "guess" } });

        foreach (var r in new[] { missing, unknown })
        {
            Assert.Equal(401, r.Status);
            Assert.Contains("missing or unknown API key", r.BodyText);
            Assert.Null(r.Consumer);
        }
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Without_a_key_the_anonymous_consumer_is_authenticated_without_a_credential(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin(Config(anonymous: "guest"));

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest());

        Assert.Equal(200, r.Status);
        Assert.Equal("guest", r.Consumer?.Username);
        Assert.Null(r.Credential);
        Assert.Equal("true", r.UpstreamHeaders["x-anonymous-consumer"]);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_key_naming_a_consumer_Kong_does_not_have_fails_closed_and_says_why(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin(Config(user: "nobody"));

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-api-key"] = "s3cret" } });

        Assert.Equal(401, r.Status);
        Assert.Contains(r.Logs, l => l.Level == "err" && l.Message.Contains("'nobody' not found", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task With_hide_credentials_off_the_key_reaches_the_upstream(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin(Config(hide: false));

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-api-key"] = "s3cret" } });

        Assert.Equal(200, r.Status);
        Assert.Equal("s3cret", r.UpstreamHeaders["x-api-key"]);
    }

    /// <summary>Kong's Admin API refuses such a config from the schema (len_min on the map's keys); a config that reaches
    /// the server anyway is refused at StartInstance, which fails the request (MsgPack:1 carries the reason to Kong's log).</summary>
    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_config_with_a_key_that_is_not_a_sha256_is_refused(KongProtocol protocol)
    {
        await using var host = await StartAsync(protocol);
        var entity = host.Kong.AddPlugin("""{"keys":{"s3cret":"ada"}}""");

        var r = await host.Kong.Worker(0).RunAsync(entity, "access", new SimRequest { Headers = { ["x-api-key"] = "s3cret" } });

        Assert.Equal(500, r.Status);
        Assert.Null(r.Consumer);
        if (protocol == KongProtocol.MsgPack)
            Assert.Contains(r.KongLog, l => l.Contains("keys", StringComparison.Ordinal) && l.Contains("'s3cret'", StringComparison.Ordinal));
    }
}
