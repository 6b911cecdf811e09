using System.Text;
using Google.Protobuf;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using Resilience.Tests.Fuzz;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.KongSide;

/// <summary>Where a scripted Kong stops talking and closes the connection.</summary>
public enum DropPoint
{
    ConnectOnly,
    MidCommand,          // half of the HandleEvent request
    AfterHandleEvent,    // request sent, nothing read
    AfterFirstCall,      // the plugin's get_headers read, not answered
    MidReply,            // half of the reply
    AfterReply,          // reply sent, nothing more read
    AfterFirstSetter,    // the first identity call read, not answered
    AfterFirstSetterReply,
    AfterEventEnd,       // ProtoBuf: end marker read, RpcReturn not; MsgPack: "ret" read
    BeforeExitRead,      // bad token: the exit was sent by the server, not read
    AfterExitRead,       // bad token: exit read (Kong never answers it)
    Never,               // the whole event (the control)
}

/// <summary>
/// One access event of gitlab-ci-auth played by a scripted Kong over a raw connection, which closes the connection
/// abruptly at a chosen <see cref="DropPoint"/>. Replies to each PDK call as Kong does (in order, as read).
/// Returns true when the event completed allowed (only for <see cref="DropPoint.Never"/> with a valid token).
/// </summary>
public static class KongScripts
{
    public static bool NeedsBadToken(DropPoint p) => p is DropPoint.BeforeExitRead or DropPoint.AfterExitRead;

    public static async Task<bool> PbEventAsync(string socket, int instanceId, string token, DropPoint drop, long seq)
    {
        using var c = await RawConn.ConnectAsync(socket);
        if (drop == DropPoint.ConnectOnly) return false;
        var call = KongWire.HandleEvent(seq, instanceId, "access").ToByteArray();
        if (drop == DropPoint.MidCommand)
        {
            await c.SendAsync((byte[])[.. PbWire.Le((uint)call.Length), .. call[..(call.Length / 2)]]);
            return false;
        }
        Check(await c.SendFrameAsync(call), "HandleEvent write");
        if (drop == DropPoint.AfterHandleEvent) return false;
        Check(Ascii(await c.ReadFrameAsync()) == "kong.request.get_headers", "first call get_headers");
        Check(await c.ReadFrameAsync() is not null, "get_headers args");
        if (drop == DropPoint.AfterFirstCall) return false;
        var reply = PbWire.Headers([("host", "api.test"), ("authorization", "Bearer " + token)]);
        if (drop == DropPoint.MidReply)
        {
            await c.SendAsync((byte[])[.. PbWire.Le((uint)reply.Length), .. reply[..(reply.Length / 2)]]);
            return false;
        }
        Check(await c.SendFrameAsync(reply), "reply write");
        if (drop is DropPoint.AfterReply or DropPoint.BeforeExitRead) return false;
        int setters = 0;
        for (int i = 0; i < 32; i++)
        {
            var method = await c.ReadFrameAsync();
            Check(method is not null, "the server closed mid-event");
            if (method!.Length == 0)
            {
                if (drop == DropPoint.AfterEventEnd) return false;
                var ret = RpcReturn.Parser.ParseFrom(await c.ReadFrameAsync() ?? throw new InvalidDataException("no RpcReturn"));
                Check(ret.Sequence == seq, "RpcReturn sequence");
                return true;
            }
            var name = Ascii(method)!;
            Check(await c.ReadFrameAsync() is not null, name + " args");
            if (name == "kong.response.exit") return false; // AfterExitRead (or an unexpected refusal)
            if (name.StartsWith("kong.service.request.", StringComparison.Ordinal) || name.StartsWith("kong.client.", StringComparison.Ordinal))
            {
                setters++;
                if (drop == DropPoint.AfterFirstSetter && setters == 1) return false;
            }
            Check(await c.SendFrameAsync([]), "setter reply");
            if (drop == DropPoint.AfterFirstSetterReply && setters == 1) return false;
        }
        throw new InvalidDataException("the event did not end within 32 calls");
    }

    public static async Task<bool> MpEventAsync(string socket, int instanceId, string token, DropPoint drop, uint msgId)
    {
        using var c = await RawConn.ConnectAsync(socket);
        if (drop == DropPoint.ConnectOnly) return false;
        var call = MpWire.Request(msgId, "plugin.HandleEvent", 1).Object(("InstanceId", w => w.Int(instanceId)), ("EventName", w => w.Str("access"))).ToArray();
        if (drop == DropPoint.MidCommand)
        {
            await c.SendAsync(call[..(call.Length / 2)]);
            return false;
        }
        Check(await c.SendAsync(call), "HandleEvent write");
        if (drop == DropPoint.AfterHandleEvent) return false;
        var (eventId, method) = await ReadCallback(c, msgId);
        Check(method == "kong.request.get_headers", "first call get_headers");
        if (drop == DropPoint.AfterFirstCall) return false;
        var data = new MpWire().Map(2).Str("host").Array(1).Str("api.test").Str("authorization").Array(1).Str("Bearer " + token).ToArray();
        var step = MpWire.Request(++msgId, "plugin.StepMultiMap", 1).Map(2).Str("EventId").Int(eventId).Str("Data").Raw(data).ToArray();
        if (drop == DropPoint.MidReply)
        {
            await c.SendAsync(step[..(step.Length / 2)]);
            return false;
        }
        Check(await c.SendAsync(step), "Step write");
        if (drop is DropPoint.AfterReply or DropPoint.BeforeExitRead) return false;
        int setters = 0;
        for (int i = 0; i < 32; i++)
        {
            (eventId, method) = await ReadCallback(c, msgId);
            if (method is null) return true; // "ret": the event is over (AfterEventEnd drops after this read)
            if (method == "kong.response.exit") return false;
            if (method.StartsWith("kong.service.request.", StringComparison.Ordinal) || method.StartsWith("kong.client.", StringComparison.Ordinal))
            {
                setters++;
                if (drop == DropPoint.AfterFirstSetter && setters == 1) return false;
            }
            Check(await c.SendAsync(MpWire.Request(++msgId, "plugin.Step", 1).Map(1).Str("EventId").Int(eventId).ToArray()), "Step write");
            if (drop == DropPoint.AfterFirstSetterReply && setters == 1) return false;
        }
        throw new InvalidDataException("the event did not end within 32 calls");
    }

    /// <summary>Reads [1, msgid, nil, {EventId, Data}]: the next call's method, or null for "ret".</summary>
    private static async Task<(int EventId, string? Method)> ReadCallback(RawConn c, uint msgId)
    {
        var (v, eof) = await c.ReadMsgPackAsync();
        Check(!eof, "the server closed mid-event");
        var msg = v as List<object?> ?? throw new InvalidDataException("not a response");
        Check(msg.Count == 4 && msg[0] is 1.0 && msg[1] is double id && id == msgId && msg[2] is null, "a response to our call without error");
        var result = msg[3] as Dictionary<string, object?> ?? throw new InvalidDataException("no result");
        int eventId = (int)(double)result["EventId"]!;
        return result.GetValueOrDefault("Data") switch
        {
            "ret" => (eventId, null),
            Dictionary<string, object?> cb => (eventId, (string)cb["Method"]!),
            var other => throw new InvalidDataException("unexpected Data " + other),
        };
    }

    private static string? Ascii(byte[]? frame) => frame is null ? null : Encoding.ASCII.GetString(frame);

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new InvalidDataException("scripted Kong: " + what);
    }
}
