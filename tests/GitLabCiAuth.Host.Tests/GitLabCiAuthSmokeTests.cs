using System.Text.Json;
using GitLabCiAuth.Host.Tests.Infrastructure;
using GitLabCiAuth.TestSupport;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace GitLabCiAuth.Host.Tests;

/// <summary>The shipped plugin in the shipped binary: a fake GitLab issuer, real RS256 tokens, Kong played by the simulator.</summary>
public sealed class GitLabCiAuthSmokeTests
{
    private const string Audience = "https://api.test";

    [Theory]
    [InlineData(KongProtocol.ProtoBuf)]
    [InlineData(KongProtocol.MsgPack)]
    public async Task Valid_token_is_forwarded_with_identity_headers_expired_and_missing_tokens_get_401(KongProtocol protocol)
    {
        await using var gitlab = FakeGitLab.Start();
        var minter = new TokenMinter(gitlab, Audience);
        using var dir = new TempDir();
        await using var host = await HostProcess.ServeAsync(dir.DefaultSocket, "-kong-prefix", dir.Path, "--protocol", Example.Args(protocol));
        await using var kong = new KongSimulator(dir.DefaultSocket, protocol, "gitlab-ci-auth", 1,
            new KongSimulatorOptions { Timeout = Example.KongTimeout });
        var entity = kong.AddPlugin($$$"""
            {"issuer": "{{{gitlab.Issuer}}}", "audiences": ["{{{Audience}}}"], "allow_insecure_http": true,
             "rules": [{"name": "any", "claims": {"project_id": ["*"]}}]}
            """);

        var valid = await kong.Worker(0).RunAsync(entity, "access", Request(minter.Mint()));
        Assert.True(valid.Outcome == SimOutcome.Completed && valid.Status == 200, valid + "\n" + string.Join("\n", valid.Logs.Select(l => l.ToString())));
        Assert.Equal("16234", valid.UpstreamHeaders["X-GitLab-Project-Id"]);   // from the token ...
        Assert.Equal("acme/platform/billing-api", valid.UpstreamHeaders["X-GitLab-Project-Path"]);
        Assert.DoesNotContain("1", valid.UpstreamHeaders.GetValues("X-GitLab-Project-Id")); // ... never the client's spoofed value
        Assert.Null(valid.UpstreamHeaders["authorization"]);                      // hide_credentials
        Assert.True(gitlab.KeysRequests >= 1, "the binary never fetched the fake issuer's keys");

        var expired = await kong.Worker(0).RunAsync(entity, "access",
            Request(minter.Mint(b => b.IssuedAt(DateTimeOffset.UtcNow.AddHours(-3), TimeSpan.FromHours(1)))));
        AssertUnauthorized(expired, "token_expired");

        var missing = await kong.Worker(0).RunAsync(entity, "access", Request(null));
        AssertUnauthorized(missing, "token_missing");
        Assert.Equal("Bearer realm=\"gitlab-ci-auth\"", missing.Exit!.Headers["WWW-Authenticate"]);

        Assert.Equal(valid.InstanceId, missing.InstanceId);
        Assert.Equal("", host.Stdout);
    }

    private static SimRequest Request(string? token)
    {
        var r = new SimRequest { Method = "POST", Path = "/deployments", Host = "api.test" };
        r.Headers["host"] = "api.test";
        r.Headers["x-gitlab-project-id"] = "1"; // a spoofing attempt
        if (token is not null) r.Headers["authorization"] = "Bearer " + token;
        return r;
    }

    private static void AssertUnauthorized(SimResult r, string code)
    {
        Assert.True(r.Outcome == SimOutcome.Exited && r.Status == 401, r.ToString());
        using var body = JsonDocument.Parse(r.Exit!.BodyText);
        Assert.Equal(code, body.RootElement.GetProperty("code").GetString());
        Assert.StartsWith("Bearer", r.Exit.Headers["WWW-Authenticate"]);
    }
}
