namespace Kong.PluginServer.Pdk;

/// <summary>
/// The Kong PDK as a plugin sees it, one module per PDK area (like Kong's Go PDK). Calls are queued:
/// a call's reply is fetched when the handler awaits it, and everything queued before leaves in the
/// same socket write; setters complete at once and ride along with the next write.
/// </summary>
public sealed class KongPdk
{
    internal KongPdk(PdkSession session)
    {
        Session = session;
        Client = new PdkClient(session);
        Ctx = new PdkCtx(session);
        Ip = new PdkIp(session);
        Log = new PdkLog(session);
        Nginx = new PdkNginx(session);
        Node = new PdkNode(session);
        Request = new PdkRequest(session);
        Response = new PdkResponse(session);
        Router = new PdkRouter(session);
        Service = new PdkService(session);
        ServiceRequest = new PdkServiceRequest(session);
        ServiceResponse = new PdkServiceResponse(session);
    }

    internal PdkSession Session { get; }

    public KongPhase Phase => Session.Phase;

    /// <summary>The protocol Kong serves this plugin over: how some values arrive differs (docs/protocol.md#value-unwrap).</summary>
    public WireProtocol Protocol => Session.Protocol;

    /// <summary>
    /// The route, service and consumer the event's plugin entity is scoped to, from the instance config Kong sent
    /// (docs/protocol.md#instance-config): no PDK call. Handlers are shared by instances of equal configs, so this is
    /// per event, not per handler.
    /// </summary>
    public InstanceScope Scope => Session.Scope;

    /// <summary>True after kong.response.exit: the handler should return.</summary>
    public bool Exited => Session.Exited;

    public PdkClient Client { get; }
    public PdkCtx Ctx { get; }
    public PdkIp Ip { get; }
    public PdkLog Log { get; }
    public PdkNginx Nginx { get; }
    public PdkNode Node { get; }
    public PdkRequest Request { get; }
    public PdkResponse Response { get; }
    public PdkRouter Router { get; }
    public PdkService Service { get; }
    public PdkServiceRequest ServiceRequest { get; }
    public PdkServiceResponse ServiceResponse { get; }
}
