using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Tests.Plugin;

public sealed class PolicyWarningsEndToEndTests
{
    [Fact]
    public async Task Fail_open_rules_are_logged_at_warn_once_per_instance_without_a_round_trip()
    {
        await using var h = PluginHarness.Start(KongProtocol.ProtoBuf);
        var entity = h.Add(c => c["rules"] = PluginHarness.Rules(
            """[{"name":"any","claims":{"project_id":["*"]}},{"name":"no-prod","effect":"deny","claims":{"environment":["production"]}}]"""));
        var token = h.Minter.Mint(b => b.Remove("environment"));

        long writes = h.Host.Server.EventWrites;
        var first = await h.AllowedAsync(entity, token);
        Assert.Equal(2, h.Host.Server.EventWrites - writes);
        var warn = Assert.Single(first.Logs, l => l.Level == "warn");
        Assert.Contains("config: rules[1] (name \"no-prod\"): deny rule on claim \"environment\"", warn.Message);

        var second = await h.AllowedAsync(entity, token);
        Assert.DoesNotContain(second.Logs, l => l.Level == "warn");
    }
}
