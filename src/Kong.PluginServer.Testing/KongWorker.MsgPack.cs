using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

// Kong's mp_rpc (MsgPack:1), per worker: one call per connection checkout.
public sealed partial class KongWorker
{
    private static readonly Dictionary<string, string> StepByMethod = new(StringComparer.Ordinal)
    {
        ["kong.client.get_credential"] = "plugin.StepCredential",
        ["kong.client.load_consumer"] = "plugin.StepConsumer",
        ["kong.client.get_consumer"] = "plugin.StepConsumer",
        ["kong.client.authenticate"] = "plugin.StepCredential",
        ["kong.node.get_memory_stats"] = "plugin.StepMemoryStats",
        ["kong.router.get_route"] = "plugin.StepRoute",
        ["kong.router.get_service"] = "plugin.StepService",
        ["kong.request.get_query"] = "plugin.StepMultiMap",
        ["kong.request.get_headers"] = "plugin.StepMultiMap",
        ["kong.response.get_headers"] = "plugin.StepMultiMap",
        ["kong.service.response.get_headers"] = "plugin.StepMultiMap",
    };

    /// <summary>Rpc:call: connect (pooled), send one request, read with a fresh unpacker until a type-1 message
    /// (notifications before it are handled), check the msgid, put the connection back. Returns (result, error).</summary>
    private async Task<(object? Result, string? Error)> MpCallAsync(PdkContext ctx, string method, object? param, int? instanceId)
    {
        long msgId = Interlocked.Increment(ref _mpMsgId);
        ctx.Res.Rpcs.Add(new SimRpc(method, msgId, instanceId));
        KongConnection c;
        try
        {
            c = await CheckoutAsync().ConfigureAwait(false);
        }
        catch (KongSocketException e)
        {
            ctx.Res.KongLog.Add("[error] trying to connect: " + e.KongError);
            return (null, e.KongError);
        }
        var usage = new Usage(c);
        bool keep = false;
        try
        {
            var bytes = MsgPackCodec.EncodeRequest(msgId, method, new[] { param }); // may raise (unpackable value)
            try
            {
                await c.SendRawAsync(bytes).ConfigureAwait(false);
            }
            catch (KongSocketException e)
            {
                keep = true;
                return (null, e.KongError);
            }
            bool first = true;
            while (true)
            {
                object? data;
                try
                {
                    data = first ? await c.ReadMsgPackFreshAsync().ConfigureAwait(false) : await c.ReadMsgPackContinueAsync().ConfigureAwait(false);
                }
                catch (KongSocketException)
                {
                    keep = true;
                    return (null, "no data");
                }
                first = false;
                if (data is not List<object?> msg) throw new LuaError("attempt to index local 'data' (a " + Lua.TypeName(data) + " value)");
                var type = msg.Count > 0 ? msg[0] : null;
                if (type is double t2 && t2 == 2)
                {
                    Notification(msg.Count > 1 ? msg[1] : null, msg.Count > 2 ? msg[2] : null);
                    continue;
                }
                if (type is not double t1 || t1 != 1) throw new LuaError("assertion failed! RPC response expected from Go plugin server");
                if (msg.Count < 2 || msg[1] is not double id || id != msgId)
                    throw new LuaError("assertion failed! unexpected RPC response ID from Go plugin server");
                c.DiscardBuffered(); // the next call uses a fresh unpacker: anything after the response is lost
                keep = true;
                var error = msg.Count > 2 ? msg[2] : null;
                if (error is not null)
                {
                    if (error is not string s) throw new LuaError("attempt to call method 'lower' (a nil value)");
                    return (null, s);
                }
                return (msg.Count > 3 ? msg[3] : null, null);
            }
        }
        finally
        {
            usage.AddTo(ctx.Res, c);
            Release(c, keep);
        }
    }

    private void Notification(object? label, object? args)
    {
        if (label as string != "serverPid") return;
        double? pid = Lua.AsNumber(args) ?? (args is string s && double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : null);
        if (_serverPid is not null && pid != _serverPid) ResetInstances();
        _serverPid = pid;
    }

    private async Task<int> StartInstanceMpAsync(PdkContext ctx, ConfigSnapshot conf)
    {
        ctx.Res.InstanceStarts++;
        var (status, err) = await MpCallAsync(ctx, "plugin.StartInstance",
            new Dictionary<string, object?> { ["Name"] = ctx.Entity.Name, ["Config"] = conf.Json }, null).ConfigureAwait(false);
        if (status is null)
        {
            ctx.Res.KongLog.Add("[error] starting instance: " + err);
            throw new LuaError(err ?? "unknown error") { ReleasesClaim = true }; // running_instances[key] = nil; error(err)
        }
        if (status is not Dictionary<string, object?> map) throw new LuaError("attempt to index local 'status' (a " + Lua.TypeName(status) + " value)");
        if (Lua.AsNumber(map.GetValueOrDefault("Id")) is not double id)
            throw new LuaError("simulator: plugin.StartInstance returned no numeric Id");
        return (int)id;
    }

    private async Task CloseInstanceMpAsync(PdkContext ctx, int id)
    {
        ctx.Res.ClosedInstances.Add(id);
        await MpCallAsync(ctx, "plugin.CloseInstance", (double)id, id).ConfigureAwait(false);
    }

    private async Task<string?> HandleEventMpAsync(PdkContext ctx, ConfigSnapshot conf, CancellationToken ct)
    {
        var (id, err) = await GetInstanceIdAsync(ctx, conf, ct).ConfigureAwait(false);
        if (err is not null) return err;
        ctx.Res.InstanceId = id;

        var (stepIn, e) = await MpCallAsync(ctx, "plugin.HandleEvent",
            new Dictionary<string, object?> { ["InstanceId"] = (double)id, ["EventName"] = ctx.Phase }, id).ConfigureAwait(false);
        if (stepIn is null) return e;
        if (stepIn is not Dictionary<string, object?> first) throw new LuaError("attempt to index local 'step_in' (a " + Lua.TypeName(stepIn) + " value)");
        var eventId = first.GetValueOrDefault("EventId");

        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (stepIn is not Dictionary<string, object?> step) throw new LuaError("attempt to index local 'step_in' (a " + Lua.TypeName(stepIn) + " value)");
            var data = step.GetValueOrDefault("Data");
            if (data is "ret") return null;
            if (data is null) throw new LuaError("attempt to index field 'Data' (a nil value)");
            var callback = data as Dictionary<string, object?>;
            var methodName = callback?.GetValueOrDefault("Method") as string;
            var rawArgs = callback?.GetValueOrDefault("Args");
            ctx.Res.PdkCalls.Add(methodName ?? "nil");
            if (methodName is null) throw new LuaError("bad argument #1 to 'gmatch' (string expected, got nil)");

            object? ret;
            if (!KongPdk.Methods.TryGetValue(methodName, out var pdk))
            {
                ctx.Res.KongLog.Add("[error] could not find pdk method: " + methodName);
                ret = null;
            }
            else
            {
                var args = rawArgs switch
                {
                    List<object?> list => new LuaArgs(list),
                    Dictionary<string, object?> => LuaArgs.None, // unpack() of a hash table: no arguments
                    _ => new LuaArgs(rawArgs),
                };
                ret = KongPdk.Invoke(ctx, pdk, args);
            }
            if (ret is LuaMulti multi) ret = multi.First; // mp_rpc keeps the first return value only
            ret = Fix(methodName, ret);
            var stepMethod = StepByMethod.GetValueOrDefault(methodName, "plugin.Step");
            (stepIn, e) = await MpCallAsync(ctx, stepMethod, new Dictionary<string, object?> { ["EventId"] = eventId, ["Data"] = ret }, id).ConfigureAwait(false);
            if (stepIn is null) return e;
            ctx.Res.RoundTrips++;
        }
    }

    /// <summary>mp_rpc's must_fix: header/query maps as name -> array of strings (a flag becomes an empty array, an
    /// empty map stays a map); raw bodies as bin.</summary>
    private static object? Fix(string method, object? ret)
    {
        switch (method)
        {
            case "kong.request.get_query":
            case "kong.request.get_headers":
            case "kong.response.get_headers":
            case "kong.service.response.get_headers":
            {
                if (!Lua.IsTable(ret)) throw new LuaError("bad argument #1 to 'pairs' (table expected, got " + Lua.TypeName(ret) + ")");
                if (ret is not Dictionary<string, object?> map || map.Count == 0) return MsgPackEmptyMap.Instance;
                var o = new Dictionary<string, object?>(map.Count, StringComparer.Ordinal);
                foreach (var kv in map)
                {
                    o[kv.Key] = kv.Value switch
                    {
                        true => new List<object?>(),
                        string or byte[] => new List<object?> { kv.Value },
                        _ => kv.Value,
                    };
                }
                return o;
            }
            case "kong.request.get_raw_body":
            case "kong.response.get_raw_body":
            case "kong.service.response.get_raw_body":
                return Lua.AsBytes(ret) is { } bytes
                    ? new MsgPackBin(bytes)
                    : throw new LuaError("bad argument #1 to 'binary' packer (string expected, got " + Lua.TypeName(ret) + ")");
            default:
                return ret;
        }
    }
}
