using System.Text;

namespace Kong.PluginServer.Testing;

/// <summary>What Kong saw and did for one event (one phase of one request), including replays.</summary>
public sealed class SimResult
{
    internal SimResult(string phase) { Phase = phase; }

    /// <summary>The phase that ran.</summary>
    public string Phase { get; }
    /// <summary>
    /// The status the client would see: the exit status, 500 when the event failed (in a request phase), else the
    /// status set with <c>kong.response.set_status</c>, else <see cref="SimRequest.ResponseStatus"/> or 200 ("the upstream").
    /// </summary>
    public int Status { get; internal set; } = 200;
    /// <summary>How the event ended.</summary>
    public SimOutcome Outcome { get; internal set; }
    /// <summary>The error Kong logged when the event failed (e.g. <c>pluginserver error: method "x" not found</c>), else null.</summary>
    public string? Error { get; internal set; }
    /// <summary>The plugin's <c>kong.response.exit</c>, if it called it.</summary>
    public SimExit? Exit { get; internal set; }
    /// <summary>The body the client would see for an exit or a 500 (Kong's <c>{"message":"An unexpected error occurred"}</c>); null when proxied.</summary>
    public byte[]? Body { get; internal set; }
    /// <summary><see cref="Body"/> as text.</summary>
    public string? BodyText => Body is null ? null : Encoding.UTF8.GetString(Body);

    /// <summary>The upstream request after the plugin's changes.</summary>
    public UpstreamRequest Upstream { get; } = new();
    /// <summary>The final upstream header map (the client's headers after set/add/clear).</summary>
    public HeaderCollection UpstreamHeaders => Upstream.Headers;
    /// <summary>The downstream response headers after the plugin's <c>kong.response.set_header</c>/add/clear (starts from <see cref="SimRequest.ResponseHeaders"/>).</summary>
    public HeaderCollection ResponseHeaders { get; internal set; } = new();
    /// <summary>Status set with <c>kong.response.set_status</c>.</summary>
    public int? ResponseStatusSet { get; internal set; }

    /// <summary>The plugin's <c>kong.log.*</c> lines.</summary>
    public List<SimLogLine> Logs { get; } = new();
    /// <summary>Kong's own log lines about the event (replay warnings, pluginserver errors, unknown MsgPack methods).</summary>
    public List<string> KongLog { get; } = new();
    /// <summary><c>kong.log.set_serialize_value</c> entries: key to the decoded value tree (null, bool, double, string, List, Dictionary).</summary>
    public Dictionary<string, object?> SerializeValues { get; internal set; } = new();
    /// <summary>The authenticated consumer after the event (set by <c>kong.client.authenticate</c> or carried from the request).</summary>
    public SimConsumer? Consumer { get; internal set; }
    /// <summary>The authenticated credential after the event.</summary>
    public SimCredential? Credential { get; internal set; }
    /// <summary>True when the plugin called <c>kong.client.authenticate</c> successfully.</summary>
    public bool Authenticated { get; internal set; }
    /// <summary><c>kong.ctx.shared</c> after the event.</summary>
    public Dictionary<string, object?> CtxShared { get; internal set; } = new();
    /// <summary><c>ngx.ctx</c> after the event.</summary>
    public Dictionary<string, object?> NgxCtx { get; internal set; } = new();

    /// <summary>Every PDK method the server called, in order (replays included; <c>kong.response.exit</c> included).</summary>
    public List<string> PdkCalls { get; } = new();
    /// <summary>PDK calls Kong answered (ProtoBuf reply frames / MsgPack Step calls).</summary>
    public int RoundTrips { get; internal set; }
    /// <summary>How many times Kong replayed the whole event after "closed" / "no plugin instance".</summary>
    public int Retries { get; internal set; }
    /// <summary>The instance id of the last HandleEvent.</summary>
    public int? InstanceId { get; internal set; }
    /// <summary>StartInstance calls made for this event.</summary>
    public int InstanceStarts { get; internal set; }
    /// <summary>Instance ids closed (CloseInstance) during this event.</summary>
    public List<int> ClosedInstances { get; } = new();
    /// <summary>Top-level RPCs Kong sent during the event, in order.</summary>
    public List<SimRpc> Rpcs { get; } = new();
    /// <summary>Complete frames (ProtoBuf) or msgpack messages received from the server during the event.</summary>
    public int FramesReceived { get; internal set; }
    /// <summary>Socket receives that returned data during the event: a best-effort count of the server's writes
    /// (writes sent back to back may coalesce into one receive).</summary>
    public int ReceiveBatches { get; internal set; }
    /// <summary>Socket writes Kong made during the event.</summary>
    public int WritesSent { get; internal set; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Phase}: {Outcome} {Status}{(Error is null ? "" : " error=" + Error)}{(Exit is null ? "" : " " + Exit)} calls=[{string.Join(",", PdkCalls)}] retries={Retries}";
}
