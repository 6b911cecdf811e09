using Kong.PluginServer.Pdk;

namespace Kong.PluginServer.Plugins;

/// <summary>Runs one event's handler and turns plugin failures into Kong's terms, the same for both protocols.</summary>
internal static class EventRunner
{
    /// <summary>
    /// Starts the handler and returns its task (completed when it ran to its end without suspending). A plugin
    /// exception thrown before the first await is handled here (see <see cref="Observe"/>).
    /// </summary>
    public static ValueTask Start(PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        session.Scope = instance.Scope;
        try
        {
            return instance.Handler.HandleAsync(phase, session.Kong);
        }
        catch (Exception e)
        {
            OnPluginFailure(e, instance, phase, session, log);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Observes a handler's completed task. A plugin exception becomes kong.log.err and, where Kong allows it, a 500
    /// exit: the event still completes normally (closing the connection would make Kong replay the event). Kong
    /// having gone away (<see cref="KongAbortedException"/>) is not a plugin failure: nothing is answered.
    /// </summary>
    public static void Observe(ValueTask task, PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        try { task.GetAwaiter().GetResult(); }
        catch (KongAbortedException) { return; }
        catch (Exception e) { OnPluginFailure(e, instance, phase, session, log); return; }
        if (session.UnawaitedResults > 0) ReportUnawaited(session.UnawaitedResults, instance, phase, log);
    }

    /// <summary>
    /// A handler returned without awaiting some of its PDK calls' results: they were sent and their replies read, but a
    /// result nobody takes is usually a bug (a missing <c>await</c>). Reported in the server's log, once per interval.
    /// </summary>
    private static void ReportUnawaited(int count, PluginInstance instance, KongPhase phase, ServerLog log) =>
        log.Limited(LogLevel.Warn, $"instance {instance.Id}: {instance.Plugin.Info.Name} returned from {KongPhases.Name(phase)} without awaiting " +
            $"{count} PDK call result(s): await each PDK call once (docs/authoring.md)", cause: "unawaited PDK results");

    private static void OnPluginFailure(Exception e, PluginInstance instance, KongPhase phase, PdkSession session, ServerLog log)
    {
        switch (e)
        {
            case KongAbortedException:
                return; // Kong is gone: nothing to answer
            case KongExitedException:
                return;  // a call after exit: the exit already ended the request
        }
        // a request that makes the plugin throw can be sent at will: one line per kind of failure and interval
        log.Limited(LogLevel.Error, $"instance {instance.Id}: plugin failed in {KongPhases.Name(phase)}: {e.GetType().Name}: {e.Message}");
        if (session.Exited) return;
        try
        {
            session.Kong.Log.MessageAsync(PdkMethods.LogErr, $"plugin failed in {KongPhases.Name(phase)}: {e.GetType().Name}: {e.Message}");
            if (KongPhases.CanExit(phase))
                session.Kong.Response.ExitAsync(500, System.Text.Encoding.UTF8.GetBytes(UnexpectedErrorBody), JsonContentType);
        }
        catch (OperationCanceledException) { } // Kong went away meanwhile
    }

    /// <summary>The body of the 500 that answers a plugin failure, as Kong's own unexpected errors read.</summary>
    internal const string UnexpectedErrorBody = """{"message":"An unexpected error occurred"}""";

    internal const string JsonContentTypeValue = "application/json; charset=utf-8";

    private static readonly Dictionary<string, string> JsonContentType = new() { ["Content-Type"] = JsonContentTypeValue };
}
