using System.Text.Json.Nodes;
using GitLabCiAuth.Testing;
using Kong.PluginServer.Testing;

namespace Resilience.Tests.Infrastructure;

/// <summary>
/// The published binary serving gitlab-ci-auth on a temporary socket, a fake GitLab issuer (http on 127.0.0.1)
/// and a token minter bound to it. Kong is played by <see cref="Simulator"/>s or by raw connections.
/// </summary>
public sealed class BinaryRig : IAsyncDisposable
{
    public const string Audience = TokenMinter.DefaultAudience;
    public const string PluginName = "gitlab-ci-auth";

    private readonly string[] _args;

    private BinaryRig(FakeGitLab gitLab, TempDir dir, HostProcess host, KongProtocol protocol, string[] args)
    {
        GitLab = gitLab;
        Minter = new TokenMinter(gitLab, Audience);
        Dir = dir;
        Host = host;
        Protocol = protocol;
        _args = args;
    }

    public FakeGitLab GitLab { get; }
    public TokenMinter Minter { get; }
    public TempDir Dir { get; }
    public HostProcess Host { get; private set; }
    public KongProtocol Protocol { get; }
    public string Socket => Dir.DefaultSocket;
    public int Pid => Host.Pid;

    /// <summary>Starts the binary (<c>-kong-prefix DIR --protocol P --log-level L</c> + <paramref name="extraArgs"/>) and waits until it listens.</summary>
    public static async Task<BinaryRig> StartAsync(KongProtocol protocol, string logLevel = "warn", params string[] extraArgs)
    {
        var gitLab = FakeGitLab.Start();
        var dir = new TempDir();
        try
        {
            string[] args = ["-kong-prefix", dir.Path, "--protocol", ProtocolArg(protocol), "--log-level", logLevel, .. extraArgs];
            var host = await HostProcess.ServeAsync(dir.DefaultSocket, args);
            return new BinaryRig(gitLab, dir, host, protocol, args);
        }
        catch
        {
            dir.Dispose();
            gitLab.Dispose();
            throw;
        }
    }

    public static string ProtocolArg(KongProtocol protocol) => protocol == KongProtocol.MsgPack ? "MsgPack:1" : "ProtoBuf:1";

    /// <summary>The smallest sensible config: this fake GitLab over http, our audience, any project.</summary>
    public JsonObject Config(Action<JsonObject>? edit = null)
    {
        var c = new JsonObject
        {
            ["issuer"] = GitLab.Issuer,
            ["audiences"] = new JsonArray(Audience),
            ["allow_insecure_http"] = true,
            ["rules"] = JsonNode.Parse("""[{"name":"any-project","claims":{"project_id":["*"]}}]"""),
        };
        edit?.Invoke(c);
        return c;
    }

    public string ConfigJson(Action<JsonObject>? edit = null) => Config(edit).ToJsonString();

    public KongSimulator Simulator(int workers = 1, bool failClosed = true) =>
        new(Socket, Protocol, PluginName, workers, new KongSimulatorOptions { Timeout = Bounds.KongTimeout, FailClosed = failClosed });

    public ProcSample Sample() => ProcSample.Of(Pid);

    /// <summary>Waits until the server holds at most <paramref name="maxFds"/> descriptors (connections closed on its side).</summary>
    public async Task<ProcSample> SettleAsync(int maxFds, string what)
    {
        await Bounds.Until(() => Posix.OpenFds(Pid) <= maxFds, $"the server's fds to fall to {maxFds} or fewer ({what}; now {Sample()})");
        return Sample();
    }

    /// <summary>SIGKILL (a crash): waits for the exit. The socket file stays behind, as after a real crash.</summary>
    public async Task KillAsync()
    {
        Host.Signal(Posix.SIGKILL);
        await Host.WaitForExitAsync(Bounds.Hang);
    }

    /// <summary>Starts the binary again with the same arguments on the same socket (Kong's respawn).</summary>
    public async Task RestartAsync()
    {
        await Host.DisposeAsync();
        Host = await HostProcess.ServeAsync(Socket, _args);
    }

    /// <summary>
    /// Kong's reload: another server with the same arguments on the same socket while this one still serves. Returns
    /// once connections to the socket reach the new one; the old one keeps running until the caller stops it.
    /// </summary>
    public async Task<HostProcess> StartSuccessorAsync()
    {
        var next = await HostProcess.StartAsync(_args);
        try
        {
            await next.WaitUntilOwnsAsync(Socket);
            return next;
        }
        catch
        {
            await next.DisposeAsync();
            throw;
        }
    }

    /// <summary>The successor becomes the rig's server; the old process is killed if it still runs.</summary>
    public async Task AdoptAsync(HostProcess successor)
    {
        var old = Host;
        Host = successor;
        await old.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        GitLab.Dispose();
        Dir.Dispose();
    }
}
