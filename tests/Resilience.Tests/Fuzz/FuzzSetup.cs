using System.Text.Json.Nodes;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.Fuzz;

/// <summary>Builds a <see cref="FuzzEnv"/> against a running binary: instances to aim events at, one valid token, many bad ones.</summary>
public static class FuzzSetup
{
    public static async Task<FuzzEnv> CreateAsync(BinaryRig rig, int seed, int maxFrameBytes, int instances = 3)
    {
        var ids = new int[instances];
        string config = "";
        for (int i = 0; i < instances; i++)
        {
            config = rig.ConfigJson(c =>
            {
                c["__seq__"] = 1000 + i;
                c["__plugin_id"] = $"f0f0f0f0-0000-4000-8000-00000000000{i}";
                c["__key__"] = $"plugins:gitlab-ci-auth:fuzz-route-{i}::::";
            });
            ids[i] = await StartInstanceAsync(rig, config);
        }
        return new FuzzEnv
        {
            Socket = rig.Socket,
            Seed = seed,
            InstanceIds = ids,
            ValidToken = rig.Minter.Mint(),
            BadTokens = BadTokens(rig),
            ConfigJson = config,
            Issuer = rig.GitLab.Issuer,
            MaxFrameBytes = maxFrameBytes,
        };
    }

    /// <summary>StartInstance on a raw connection (either protocol); returns the id.</summary>
    public static async Task<int> StartInstanceAsync(BinaryRig rig, string configJson)
    {
        using var c = await RawConn.ConnectAsync(rig.Socket);
        if (rig.Protocol == KongProtocol.ProtoBuf)
        {
            Assert.True(await c.SendFrameAsync(KongWire.StartInstance(2, BinaryRig.PluginName, configJson).ToByteArray()));
            var reply = await c.ReadFrameAsync() ?? throw new InvalidOperationException("StartInstance: the server closed");
            var id = RpcReturn.Parser.ParseFrom(reply).InstanceStatus.InstanceId;
            Assert.True(id > 0);
            return id;
        }
        var req = MpWire.Request(1, "plugin.StartInstance", 1).Object(("Name", w => w.Str(BinaryRig.PluginName)), ("Config", w => w.Str(configJson))).ToArray();
        Assert.True(await c.SendAsync(req));
        var (v, eof) = await c.ReadMsgPackAsync();
        Assert.False(eof, "StartInstance: the server closed");
        var msg = Assert.IsType<List<object?>>(v);
        Assert.Null(msg[2]);
        var result = Assert.IsType<Dictionary<string, object?>>(msg[3]);
        return (int)Assert.IsType<double>(result["Id"]);
    }

    /// <summary>Tokens that must never be allowed, each for a different reason.</summary>
    public static string[] BadTokens(BinaryRig rig)
    {
        var m = rig.Minter;
        var now = DateTimeOffset.UtcNow;
        var valid = m.Mint();
        return
        [
            m.AlgNone(),
            m.Hs256WithPublicKey(),
            m.SignedByUnknownKeyReusingKid(),
            m.WithRandomKid(),
            m.Mint(b => b.IssuedAt(now.AddHours(-3), TimeSpan.FromHours(1))),
            m.Mint(b => b.Set("aud", "https://someone-else.example")),
            m.Mint(b => b.Set("iss", rig.GitLab.Issuer + "/")),
            m.Mint(b => b.Header("crit", new[] { "exp" })),
            m.Mint(b => b.Set("exp", new RawJson("1e400"))),
            m.Ci().BuildWithRawPayload(System.Text.Encoding.UTF8.GetBytes(m.Ci().PayloadJson[..^1] + ",\"project_id\":\"1\"}")),
            m.UserLoginToken(),
            valid[..^10],
            valid + "A",
            valid.Replace('.', ','),
            string.Join('.', valid.Split('.')[..2]) + ".",
        ];
    }
}
