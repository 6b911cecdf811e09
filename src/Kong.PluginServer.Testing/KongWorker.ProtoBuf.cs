using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing.Internal;

namespace Kong.PluginServer.Testing;

// Kong's pb_rpc (ProtoBuf:1), per worker.
public sealed partial class KongWorker
{
    private long NextPbSequence() => Interlocked.Increment(ref _pbSeq) + 1;

    /// <summary>Rpc:call for commands without a bridge loop (start/close). Returns (reply, null) or (null, error);
    /// raises (LuaError) where Kong asserts.</summary>
    private async Task<(RpcReturn? Reply, string? Error)> PbCallAsync(PdkContext ctx, RpcCall call, string command, int? instanceId)
    {
        long seq = NextPbSequence();
        call.Sequence = seq;
        ctx.Res.Rpcs.Add(new SimRpc(command, seq, instanceId));
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
            try
            {
                await c.SendFrameAsync(call).ConfigureAwait(false);
            }
            catch (KongSocketException e)
            {
                throw new LuaError(e.KongError); // assert(c:send(...))
            }
            ReadOnlyMemory<byte> frame;
            try
            {
                frame = await c.ReadFrameViewAsync().ConfigureAwait(false);
            }
            catch (KongSocketException e)
            {
                return (null, e.KongError);
            }
            keep = true; // c:setkeepalive() comes before the decode and the sequence assertion
            RpcReturn reply;
            try
            {
                reply = RpcReturn.Parser.ParseFrom(frame.Span);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new LuaError("assertion failed! (pb.decode RpcReturn: " + e.Message + ")");
            }
            if (reply.Sequence != seq) throw new LuaError($"assertion failed! (RpcReturn.sequence {reply.Sequence} ~= {seq})");
            return (reply, null);
        }
        finally
        {
            usage.AddTo(ctx.Res, c);
            Release(c, keep);
        }
    }

    private async Task<int> StartInstancePbAsync(PdkContext ctx, ConfigSnapshot conf)
    {
        var call = new RpcCall
        {
            CmdStartInstance = new CmdStartInstance { Name = ctx.Entity.Name, Config = Google.Protobuf.ByteString.CopyFrom(conf.Utf8) },
        };
        ctx.Res.InstanceStarts++;
        var (reply, err) = await PbCallAsync(ctx, call, "cmd_start_instance", null).ConfigureAwait(false);
        if (reply is null)
        {
            ctx.Res.KongLog.Add("[error] starting instance: " + err);
            throw new LuaError(err ?? "unknown error") { ReleasesClaim = true }; // running_instances[key] = nil; error(err) in get_instance_id
        }
        if (reply.InstanceStatus is null) throw new LuaError("attempt to index field 'instance_status' (a nil value)");
        return reply.InstanceStatus.InstanceId;
    }

    private async Task CloseInstancePbAsync(PdkContext ctx, int id)
    {
        ctx.Res.ClosedInstances.Add(id);
        var call = new RpcCall { CmdCloseInstance = new CmdCloseInstance { InstanceId = id } };
        await PbCallAsync(ctx, call, "cmd_close_instance", id).ConfigureAwait(false); // result and errors ignored
    }

    private async Task<string?> HandleEventPbAsync(PdkContext ctx, ConfigSnapshot conf, CancellationToken ct)
    {
        var (id, err) = await GetInstanceIdAsync(ctx, conf, ct).ConfigureAwait(false);
        if (err is not null) return err;
        ctx.Res.InstanceId = id;

        long seq = NextPbSequence();
        ctx.Res.Rpcs.Add(new SimRpc("cmd_handle_event", seq, id));
        KongConnection c;
        try
        {
            c = await CheckoutAsync().ConfigureAwait(false);
        }
        catch (KongSocketException e)
        {
            ctx.Res.KongLog.Add("[error] trying to connect: " + e.KongError);
            return e.KongError;
        }
        var usage = new Usage(c);
        bool keep = false;
        try
        {
            var call = new RpcCall { Sequence = seq, CmdHandleEvent = new CmdHandleEvent { InstanceId = id, EventName = ctx.Phase } };
            try
            {
                await c.SendFrameAsync(call).ConfigureAwait(false);
            }
            catch (KongSocketException e)
            {
                throw new LuaError(e.KongError);
            }

            // the bridge loop: method-name frame, argument frame, reply frame; an empty name frame ends it
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                ReadOnlyMemory<byte> nameFrame;
                try
                {
                    nameFrame = await c.ReadFrameViewAsync().ConfigureAwait(false);
                }
                catch (KongSocketException e)
                {
                    return e.KongError;
                }
                if (nameFrame.Length == 0) break;
                var method = PbBridge.Find(nameFrame.Span, out var decodedName);
                string methodName = method?.WireName ?? decodedName!;

                ReadOnlyMemory<byte> argFrame;
                try
                {
                    argFrame = await c.ReadFrameViewAsync().ConfigureAwait(false);
                }
                catch (KongSocketException e)
                {
                    return e.KongError;
                }
                ctx.Res.PdkCalls.Add(methodName);
                if (method is null) return $"method \"{methodName}\" not found";
                if (method.Impl is null) throw new LuaError($"attempt to call field 'method' (a nil value) ({methodName})");

                var args = PbBridge.Unwrap(method, argFrame.Span);
                var ret = KongPdk.Invoke(ctx, method.Impl, args); // LuaError: no reply, the handler fails; ExitSignal: never answered
                var reply = PbBridge.Wrap(method, ret, ctx);
                var bytes = reply is null ? ReadOnlyMemory<byte>.Empty : c.Serialize(reply);
                try
                {
                    await c.SendFrameAsync(bytes).ConfigureAwait(false);
                }
                catch (KongSocketException e)
                {
                    throw new LuaError(e.KongError);
                }
                ctx.Res.RoundTrips++;
            }

            ReadOnlyMemory<byte> retFrame;
            try
            {
                retFrame = await c.ReadFrameViewAsync().ConfigureAwait(false);
            }
            catch (KongSocketException e)
            {
                return e.KongError;
            }
            keep = true;
            RpcReturn rpcReturn;
            try
            {
                rpcReturn = RpcReturn.Parser.ParseFrom(retFrame.Span);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new LuaError("assertion failed! (pb.decode RpcReturn: " + e.Message + ")");
            }
            if (rpcReturn.Sequence != seq) throw new LuaError($"assertion failed! (RpcReturn.sequence {rpcReturn.Sequence} ~= {seq})");
            return null;
        }
        finally
        {
            usage.AddTo(ctx.Res, c);
            Release(c, keep); // not kept after an error, a raise or an exit: abandoned, then closed (the server sees EOF)
        }
    }
}
