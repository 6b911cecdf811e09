using Kong.PluginServer.Pdk;
using Kong.PluginServer.Plugins;

namespace Kong.PluginServer.Server;

/// <summary>Runs one event's handler and turns plugin failures into Kong's terms, the same for both protocols.</summary>
internal static class EventRunner
{
    /// <summary>
    /// Starts the handler. A plugin exception becomes kong.log.err and, where Kong allows it, a 500 exit:
    /// the event still completes normally (closing the connection would make Kong replay the event).
    /// </summary>
    public static ValueTask StartAsync(PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        ValueTask task;
        session.Scope = instance.Scope;
        try
        {
            task = instance.Handler.HandleAsync(phase, session.Kong);
        }
        catch (Exception e)
        {
            OnPluginFailure(e, instance, phase, session, log);
            return ValueTask.CompletedTask;
        }
        if (task.IsCompletedSuccessfully) return task;
        return Observe(task, instance, phase, session, log);
    }

    private static async ValueTask Observe(ValueTask task, PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        try { await task.ConfigureAwait(false); }
        catch (Exception e) { OnPluginFailure(e, instance, phase, session, log); }
    }

    private static void OnPluginFailure(Exception e, PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        switch (e)
        {
            case KongAbortedException:
                throw e; // Kong is gone: nothing to answer
            case KongExitedException:
                return;  // a call after exit: the exit already ended the request
        }
        // a request that makes the plugin throw can be sent at will: one line per kind of failure and interval
        log.Limited(LogLevel.Error, $"instance {instance.Id}: plugin failed in {KongPhases.Name(phase)}: {e.GetType().Name}: {e.Message}");
        if (session.Exited) return;
        session.Kong.Log.MessageAsync(PdkMethods.LogErr, $"plugin failed in {KongPhases.Name(phase)}: {e.GetType().Name}: {e.Message}");
        if (KongPhases.CanExit(phase))
            session.Kong.Response.ExitAsync(500, """{"message":"An unexpected error occurred"}"""u8.ToArray(), JsonContentType);
    }

    private static readonly Dictionary<string, string> JsonContentType = new() { ["Content-Type"] = "application/json; charset=utf-8" };
}
