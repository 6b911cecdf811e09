namespace Kong.PluginServer.Pdk;

/// <summary>
/// The 74 PDK methods Kong serves to external plugins over ProtoBuf:1 (docs/protocol.md#method-table; the same set since
/// Kong 3.7). Wire names follow Kong's rule on the .proto's rpc names. A test checks this table against
/// the service in Protos/pluginsocket.proto.
/// </summary>
internal static class PdkMethods
{
    public static readonly PdkMethod ClientGetIp = new("kong.client.get_ip", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod ClientGetForwardedIp = new("kong.client.get_forwarded_ip", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod ClientGetPort = new("kong.client.get_port", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod ClientGetForwardedPort = new("kong.client.get_forwarded_port", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod ClientGetCredential = new("kong.client.get_credential", PdkArgKind.Empty, PdkReturnKind.Credential);
    public static readonly PdkMethod ClientLoadConsumer = new("kong.client.load_consumer", PdkArgKind.ConsumerSpec, PdkReturnKind.Consumer);
    public static readonly PdkMethod ClientGetConsumer = new("kong.client.get_consumer", PdkArgKind.Empty, PdkReturnKind.Consumer);
    public static readonly PdkMethod ClientAuthenticate = new("kong.client.authenticate", PdkArgKind.AuthenticateArgs, PdkReturnKind.Empty);
    public static readonly PdkMethod ClientGetProtocol = new("kong.client.get_protocol", PdkArgKind.Bool, PdkReturnKind.String);
    public static readonly PdkMethod CtxSharedSet = new("kong.ctx.shared.set", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod CtxSharedGet = new("kong.ctx.shared.get", PdkArgKind.String, PdkReturnKind.Value);
    public static readonly PdkMethod IpIsTrusted = new("kong.ip.is_trusted", PdkArgKind.String, PdkReturnKind.Bool);
    public static readonly PdkMethod LogAlert = new("kong.log.alert", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogCrit = new("kong.log.crit", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogErr = new("kong.log.err", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogWarn = new("kong.log.warn", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogNotice = new("kong.log.notice", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogInfo = new("kong.log.info", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogDebug = new("kong.log.debug", PdkArgKind.ListValue, PdkReturnKind.Empty);
    public static readonly PdkMethod LogSetSerializeValue = new("kong.log.set_serialize_value", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod LogSerialize = new("kong.log.serialize", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod NginxGetVar = new("kong.nginx.get_var", PdkArgKind.String, PdkReturnKind.String);
    public static readonly PdkMethod NginxGetTls1VersionStr = new("kong.nginx.get_tls1_version_str", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod NginxSetCtx = new("kong.nginx.set_ctx", PdkArgKind.KV, PdkReturnKind.String);
    public static readonly PdkMethod NginxGetCtx = new("kong.nginx.get_ctx", PdkArgKind.String, PdkReturnKind.Value);
    public static readonly PdkMethod NginxReqStartTime = new("kong.nginx.req_start_time", PdkArgKind.Empty, PdkReturnKind.Number);
    public static readonly PdkMethod NginxGetSubsystem = new("kong.nginx.get_subsystem", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod NodeGetId = new("kong.node.get_id", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod NodeGetMemoryStats = new("kong.node.get_memory_stats", PdkArgKind.Empty, PdkReturnKind.MemoryStats);
    public static readonly PdkMethod RequestGetScheme = new("kong.request.get_scheme", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetHost = new("kong.request.get_host", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetPort = new("kong.request.get_port", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod RequestGetForwardedScheme = new("kong.request.get_forwarded_scheme", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetForwardedHost = new("kong.request.get_forwarded_host", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetForwardedPort = new("kong.request.get_forwarded_port", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod RequestGetHttpVersion = new("kong.request.get_http_version", PdkArgKind.Empty, PdkReturnKind.Number);
    public static readonly PdkMethod RequestGetMethod = new("kong.request.get_method", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetPath = new("kong.request.get_path", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetPathWithQuery = new("kong.request.get_path_with_query", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetRawQuery = new("kong.request.get_raw_query", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetQueryArg = new("kong.request.get_query_arg", PdkArgKind.String, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetQuery = new("kong.request.get_query", PdkArgKind.Int, PdkReturnKind.Struct);
    public static readonly PdkMethod RequestGetHeader = new("kong.request.get_header", PdkArgKind.String, PdkReturnKind.String);
    public static readonly PdkMethod RequestGetHeaders = new("kong.request.get_headers", PdkArgKind.Int, PdkReturnKind.Struct);
    public static readonly PdkMethod RequestGetRawBody = new("kong.request.get_raw_body", PdkArgKind.Empty, PdkReturnKind.RawBody);
    public static readonly PdkMethod RequestGetUriCaptures = new("kong.request.get_uri_captures", PdkArgKind.Empty, PdkReturnKind.UriCaptures);
    public static readonly PdkMethod ResponseGetStatus = new("kong.response.get_status", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod ResponseGetHeader = new("kong.response.get_header", PdkArgKind.String, PdkReturnKind.String);
    public static readonly PdkMethod ResponseGetHeaders = new("kong.response.get_headers", PdkArgKind.Int, PdkReturnKind.Struct);
    public static readonly PdkMethod ResponseGetSource = new("kong.response.get_source", PdkArgKind.Empty, PdkReturnKind.String);
    public static readonly PdkMethod ResponseSetStatus = new("kong.response.set_status", PdkArgKind.Int, PdkReturnKind.Empty);
    public static readonly PdkMethod ResponseSetHeader = new("kong.response.set_header", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod ResponseAddHeader = new("kong.response.add_header", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod ResponseClearHeader = new("kong.response.clear_header", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ResponseSetHeaders = new("kong.response.set_headers", PdkArgKind.Struct, PdkReturnKind.Empty);
    public static readonly PdkMethod ResponseExit = new("kong.response.exit", PdkArgKind.ExitArgs, PdkReturnKind.NoReply);
    public static readonly PdkMethod RouterGetRoute = new("kong.router.get_route", PdkArgKind.Empty, PdkReturnKind.Route);
    public static readonly PdkMethod RouterGetService = new("kong.router.get_service", PdkArgKind.Empty, PdkReturnKind.Service);
    public static readonly PdkMethod ServiceSetUpstream = new("kong.service.set_upstream", PdkArgKind.String, PdkReturnKind.Bool);
    public static readonly PdkMethod ServiceSetTarget = new("kong.service.set_target", PdkArgKind.Target, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetScheme = new("kong.service.request.set_scheme", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetPath = new("kong.service.request.set_path", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetRawQuery = new("kong.service.request.set_raw_query", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetMethod = new("kong.service.request.set_method", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetQuery = new("kong.service.request.set_query", PdkArgKind.Struct, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetHeader = new("kong.service.request.set_header", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestAddHeader = new("kong.service.request.add_header", PdkArgKind.KV, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestClearHeader = new("kong.service.request.clear_header", PdkArgKind.String, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetHeaders = new("kong.service.request.set_headers", PdkArgKind.Struct, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceRequestSetRawBody = new("kong.service.request.set_raw_body", PdkArgKind.ByteString, PdkReturnKind.Empty);
    public static readonly PdkMethod ServiceResponseGetStatus = new("kong.service.response.get_status", PdkArgKind.Empty, PdkReturnKind.Int);
    public static readonly PdkMethod ServiceResponseGetHeader = new("kong.service.response.get_header", PdkArgKind.String, PdkReturnKind.String);
    public static readonly PdkMethod ServiceResponseGetHeaders = new("kong.service.response.get_headers", PdkArgKind.Int, PdkReturnKind.Struct);
    public static readonly PdkMethod ServiceResponseGetRawBody = new("kong.service.response.get_raw_body", PdkArgKind.Empty, PdkReturnKind.ByteString);

    /// <summary>Every method, in table order.</summary>
    public static readonly IReadOnlyList<PdkMethod> All =
    [
        ClientGetIp,
        ClientGetForwardedIp,
        ClientGetPort,
        ClientGetForwardedPort,
        ClientGetCredential,
        ClientLoadConsumer,
        ClientGetConsumer,
        ClientAuthenticate,
        ClientGetProtocol,
        CtxSharedSet,
        CtxSharedGet,
        IpIsTrusted,
        LogAlert,
        LogCrit,
        LogErr,
        LogWarn,
        LogNotice,
        LogInfo,
        LogDebug,
        LogSetSerializeValue,
        LogSerialize,
        NginxGetVar,
        NginxGetTls1VersionStr,
        NginxSetCtx,
        NginxGetCtx,
        NginxReqStartTime,
        NginxGetSubsystem,
        NodeGetId,
        NodeGetMemoryStats,
        RequestGetScheme,
        RequestGetHost,
        RequestGetPort,
        RequestGetForwardedScheme,
        RequestGetForwardedHost,
        RequestGetForwardedPort,
        RequestGetHttpVersion,
        RequestGetMethod,
        RequestGetPath,
        RequestGetPathWithQuery,
        RequestGetRawQuery,
        RequestGetQueryArg,
        RequestGetQuery,
        RequestGetHeader,
        RequestGetHeaders,
        RequestGetRawBody,
        RequestGetUriCaptures,
        ResponseGetStatus,
        ResponseGetHeader,
        ResponseGetHeaders,
        ResponseGetSource,
        ResponseSetStatus,
        ResponseSetHeader,
        ResponseAddHeader,
        ResponseClearHeader,
        ResponseSetHeaders,
        ResponseExit,
        RouterGetRoute,
        RouterGetService,
        ServiceSetUpstream,
        ServiceSetTarget,
        ServiceRequestSetScheme,
        ServiceRequestSetPath,
        ServiceRequestSetRawQuery,
        ServiceRequestSetMethod,
        ServiceRequestSetQuery,
        ServiceRequestSetHeader,
        ServiceRequestAddHeader,
        ServiceRequestClearHeader,
        ServiceRequestSetHeaders,
        ServiceRequestSetRawBody,
        ServiceResponseGetStatus,
        ServiceResponseGetHeader,
        ServiceResponseGetHeaders,
        ServiceResponseGetRawBody,
    ];

    private static readonly Dictionary<string, PdkMethod> ByName = All.ToDictionary(m => m.Name, StringComparer.Ordinal);

    public static PdkMethod? Find(string wireName) => ByName.GetValueOrDefault(wireName);
}
