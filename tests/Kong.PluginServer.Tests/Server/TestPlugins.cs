using System.Collections.Concurrent;
using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Tests.Server;

[KongConfig]
public sealed partial class EchoConfig
{
    [KongField(Default = "x-in")]
    public string Header { get; set; }

    [KongField(Default = "echo", OneOf = ["echo", "exit", "throw", "throw-sync", "after-exit", "slow", "log-phase", "gate", "config"])]
    public string Mode { get; set; }

    [KongField(DefaultJson = "[]")]
    public string[] Tags { get; set; }
}

/// <summary>
/// A plugin whose behaviour the tests steer through its config `mode`: echo (read two headers, set one),
/// exit, throw (async, after a PDK call; in the log phase too), throw-sync (before any await),
/// after-exit (PDK call after exit; the exception the plugin saw is recorded), slow (awaits real async work
/// between calls), gate (signals <see cref="Entered"/>, waits for <see cref="Gate"/>, then sets a header),
/// config (echoes its parsed config into an upstream header).
/// </summary>
public sealed class EchoPlugin : KongPlugin<EchoConfig>
{
    public override string Name => "echo";
    public override string Version => "1.0.0";
    public override int Priority => 10;
    public override KongPhase Phases => KongPhase.Access | KongPhase.Log;
    public int HandlersCreated;
    public int HandlersDisposed;

    /// <summary>Exceptions the plugin's own code observed from PDK calls (after-exit mode).</summary>
    public readonly ConcurrentQueue<Exception> PluginSaw = new();

    /// <summary>slow mode: the thread each handler continued on after awaiting the PDK call that followed its async hop.</summary>
    public readonly ConcurrentQueue<string?> ContinuedOn = new();

    /// <summary>slow mode: handlers whose PDK result was in before they awaited it (no continuation to place).</summary>
    public int ResultsBeforeAwait;

    /// <summary>gate mode: completed when a handler is waiting at the gate.</summary>
    public readonly TaskCompletionSource Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>gate mode: handlers wait for this before finishing.</summary>
    public readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override IPluginHandler CreateHandler(EchoConfig config)
    {
        Interlocked.Increment(ref HandlersCreated);
        return new Handler(config, this);
    }

    private sealed class Handler(EchoConfig config, EchoPlugin owner) : PluginHandler
    {
        public override ValueTask AccessAsync(KongPdk kong)
        {
            if (config.Mode == "throw-sync") throw new InvalidOperationException("sync boom");
            return AccessCoreAsync(kong);
        }

        private async ValueTask AccessCoreAsync(KongPdk kong)
        {
            switch (config.Mode)
            {
                case "exit":
                    await kong.Response.ExitAsync(418, "teapot", new Dictionary<string, string> { ["Content-Type"] = "text/plain" });
                    return;
                case "throw":
                    await kong.Request.GetHeaderAsync(config.Header);
                    throw new InvalidOperationException("boom");
                case "after-exit":
                    await kong.Response.ExitAsync(401, "no");
                    try
                    {
                        await kong.ServiceRequest.SetHeaderAsync("x-late", "1");
                    }
                    catch (Exception e)
                    {
                        owner.PluginSaw.Enqueue(e);
                        throw;
                    }
                    return;
                case "slow":
                {
                    var a = await kong.Request.GetHeaderAsync(config.Header);
                    await Task.Delay(20);
                    var pathCall = kong.Request.GetPathAsync();
                    // on MsgPack:1 the call leaves at once, so its result may be in before this thread awaits it: then
                    // the await does not suspend and there is no continuation to place
                    bool suspends = !pathCall.IsCompleted;
                    var b = await pathCall;
                    if (suspends) owner.ContinuedOn.Enqueue(Thread.CurrentThread.Name);
                    else Interlocked.Increment(ref owner.ResultsBeforeAwait);
                    await kong.ServiceRequest.SetHeaderAsync("x-out", a + b);
                    return;
                }
                case "gate":
                    owner.Entered.TrySetResult();
                    await owner.Gate.Task;
                    await kong.ServiceRequest.SetHeaderAsync("x-gate", "open");
                    return;
                case "config":
                    await kong.ServiceRequest.SetHeaderAsync("x-config", $"{config.Header}|{config.Mode}|{string.Join(",", config.Tags)}");
                    return;
                default:
                {
                    var a = kong.Request.GetHeaderAsync(config.Header);
                    var b = kong.Request.GetHeaderAsync("host");
                    await kong.ServiceRequest.SetHeaderAsync("x-out", $"{await a}@{await b}");
                    return;
                }
            }
        }

        public override async ValueTask LogAsync(KongPdk kong)
        {
            var serialized = await kong.Log.SerializeAsync();
            if (config.Mode == "throw") throw new InvalidOperationException("log boom");
            await kong.Log.InfoAsync("serialized", serialized.Length);
        }

        public override void Dispose() => Interlocked.Increment(ref owner.HandlersDisposed);
    }
}

[KongConfig]
public sealed partial class ScriptConfig;

/// <summary>A plugin whose handler is whatever the test assigns to <see cref="Script"/> (every phase).</summary>
public sealed class ScriptPlugin : KongPlugin<ScriptConfig>
{
    public override string Name => "script";
    public override string Version => "0.1.0";
    public override int Priority => 5;
    public override KongPhase Phases => KongPhase.Rewrite | KongPhase.Access | KongPhase.Response | KongPhase.Log;

    public Func<KongPhase, KongPdk, ValueTask>? Script { get; set; }

    protected override IPluginHandler CreateHandler(ScriptConfig config) => new Handler(this);

    private sealed class Handler(ScriptPlugin owner) : IPluginHandler
    {
        public ValueTask HandleAsync(KongPhase phase, KongPdk kong) => owner.Script?.Invoke(phase, kong) ?? ValueTask.CompletedTask;
        public void Dispose() { }
    }
}
