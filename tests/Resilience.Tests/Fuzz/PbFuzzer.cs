using System.Text;
using Google.Protobuf;
using ByteString = Google.Protobuf.ByteString;
using Kong.PluginServer.Protocol.ProtoBuf.Messages;
using Kong.PluginServer.Testing;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.Fuzz;

/// <summary>
/// Seeded ProtoBuf:1 fuzz cases. Each case opens its own connection, sends malformed or mutated frames (or plays
/// a hostile Kong through an access event), then half-closes. Oracles: the server answers or closes after every
/// complete frame and closes a half-closed connection (no hang); an event ends allowed only for the valid token
/// presented correctly, and such a control is always allowed.
/// </summary>
public static class PbFuzzer
{
    private const string Plugin = "gitlab-ci-auth";

    public static async Task<string> RunCaseAsync(FuzzEnv env, int index)
    {
        var rng = env.Rng(index);
        using var c = await RawConn.ConnectAsync(env.Socket);
        int pick = rng.Next(100);
        string kind;
        if (pick < 40) kind = await EventAsync(env, rng, c, index);
        else if (pick < 46) kind = await BadConfigAsync(env, rng, c, index);
        else
        {
            (kind, var chunks) = Static(env, rng);
            foreach (var chunk in chunks)
                if (!await c.SendAsync(chunk)) { env.Stats.Closed(); break; }
        }
        c.HalfClose();
        if (!await c.WaitForCloseAsync())
            env.Stats.Violation(index, kind, "the server did not close a half-closed connection");
        return kind;
    }

    private static int Id(FuzzEnv env, Random rng) => env.InstanceIds[rng.Next(env.InstanceIds.Length)];
    private static long Seq(Random rng) => rng.Next(2, int.MaxValue);

    private static byte[] Valid(FuzzEnv env, Random rng) => rng.Next(5) switch
    {
        0 => KongWire.StartInstance(Seq(rng), Plugin, env.ConfigJson).ToByteArray(),
        1 => KongWire.HandleEvent(Seq(rng), Id(env, rng), "access").ToByteArray(),
        2 => KongWire.CloseInstance(Seq(rng), rng.Next(1, 1000)).ToByteArray(), // ids below 1000: never live? random ids rarely are
        3 => new RpcCall { Sequence = Seq(rng), CmdGetInstanceStatus = new CmdGetInstanceStatus { InstanceId = Id(env, rng) } }.ToByteArray(),
        _ => new RpcCall { Sequence = Seq(rng), CmdGetPluginNames = new CmdGetPluginNames() }.ToByteArray(),
    };

    /// <summary>Non-interactive cases: a list of writes.</summary>
    private static (string Kind, List<byte[]> Chunks) Static(FuzzEnv env, Random rng)
    {
        var chunks = new List<byte[]>();
        switch (rng.Next(15))
        {
            case 0:
                chunks.Add(Mutate.RandomBytes(rng, 1, 4096));
                return ("pb-random-bytes", chunks);
            case 1:
                chunks.Add(PbWire.Frame(Mutate.RandomBytes(rng, 0, 2048)));
                return ("pb-random-frame", chunks);
            case 2:
            {
                var payload = Valid(env, rng);
                int sent = rng.Next(payload.Length);
                chunks.Add(PbWire.Le((uint)payload.Length));
                chunks.Add(payload[..sent]);
                return ("pb-truncated-frame", chunks);
            }
            case 3:
                chunks.Add(Mutate.RandomBytes(rng, 1, 3));
                return ("pb-truncated-length", chunks);
            case 4:
            {
                uint[] lengths = [(uint)env.MaxFrameBytes + 1, (uint)env.MaxFrameBytes + 4096, int.MaxValue, 0x80000000, uint.MaxValue];
                chunks.Add(PbWire.Le(lengths[rng.Next(lengths.Length)]));
                chunks.Add(Mutate.RandomBytes(rng, 0, 4096));
                return ("pb-oversized-length", chunks);
            }
            case 5:
                // a length the server accepts, then far less data: it must not wait forever once we close
                // (frames near the maximum are the subject of MemoryRetentionTests)
                chunks.Add(PbWire.Le((uint)rng.Next(1024, env.MaxFrameBytes + 1)));
                chunks.Add(Mutate.RandomBytes(rng, 0, 1024));
                return ("pb-length-exceeds-data", chunks);
            case 6:
            {
                int n = rng.Next(1, 4);
                for (int i = 0; i < n; i++) chunks.Add(PbWire.Frame(Mutate.Bytes(rng, Valid(env, rng))));
                return ("pb-mutated-command", chunks);
            }
            case 7:
                chunks.Add(PbWire.Frame(WrongWireType(env, rng)));
                return ("pb-wrong-wire-type", chunks);
            case 8:
            {
                // unknown field 15 nested length-delimited N deep inside a HandleEvent (Skip must not recurse)
                var inner = PbWire.Nested(15, rng.Next(100, 50_000));
                var body = (byte[])[.. PbWire.Int(1, (ulong)Id(env, rng)), .. PbWire.Str(2, "access"), .. inner];
                chunks.Add(PbWire.Frame([.. PbWire.Int(1, 7), .. PbWire.Bytes(36, body)]));
                return ("pb-deep-nesting", chunks);
            }
            case 9:
            {
                var huge = Encoding.ASCII.GetBytes(new string('e', rng.Next(64 * 1024, 1024 * 1024)));
                byte[] cmd = rng.Next(3) switch
                {
                    0 => [.. PbWire.Int(1, 9), .. PbWire.Bytes(36, [.. PbWire.Int(1, (ulong)Id(env, rng)), .. PbWire.Bytes(2, huge)])],
                    1 => [.. PbWire.Int(1, 9), .. PbWire.Bytes(33, [.. PbWire.Bytes(1, huge), .. PbWire.Str(2, env.ConfigJson)])],
                    _ => [.. PbWire.Int(1, 9), .. PbWire.Bytes(33, [.. PbWire.Str(1, Plugin), .. PbWire.Bytes(2, Encoding.UTF8.GetBytes("{\"issuer\":\"" + Encoding.ASCII.GetString(huge) + "\"}"))])],
                };
                chunks.Add(PbWire.Frame(cmd));
                return ("pb-huge-string", chunks);
            }
            case 10:
            {
                var bad = Mutate.HostileText(rng);
                chunks.Add(PbWire.Frame(rng.Next(2) == 0
                    ? [.. PbWire.Int(1, 3), .. PbWire.Bytes(36, [.. PbWire.Int(1, (ulong)Id(env, rng)), .. PbWire.Bytes(2, bad)])]
                    : [.. PbWire.Int(1, 3), .. PbWire.Bytes(32, PbWire.Bytes(1, bad))]));
                return ("pb-hostile-names", chunks);
            }
            case 11:
            {
                int[] fields = [0, 2, 3, 30, 37, 38, 50, 1000, (1 << 29) - 1];
                int f = fields[rng.Next(fields.Length)];
                chunks.Add(PbWire.Frame(f == 0 ? [0x02, 0x00] : [.. PbWire.Int(1, 2), .. PbWire.Bytes(f, [])]));
                return ("pb-unknown-command", chunks);
            }
            case 12:
            {
                byte[] seq = rng.Next(3) switch
                {
                    0 => [0x08, .. Enumerable.Repeat((byte)0xff, 10)],               // 10-byte varint overflowing 64 bits
                    1 => [0x08, .. Enumerable.Repeat((byte)0x80, 11), 0x01],          // 12-byte varint
                    _ => [.. PbWire.Int(1, ulong.MaxValue)],                              // -1
                };
                chunks.Add(PbWire.Frame([.. seq, .. PbWire.Bytes(31, [])]));
                return ("pb-bad-sequence", chunks);
            }
            case 13:
            {
                // several commands in one write, garbage at the end
                var all = new List<byte>();
                int n = rng.Next(2, 8);
                for (int i = 0; i < n; i++)
                    all.AddRange(PbWire.Frame(rng.Next(3) switch
                    {
                        0 => new RpcCall { Sequence = Seq(rng), CmdGetPluginNames = new() }.ToByteArray(),
                        1 => new RpcCall { Sequence = Seq(rng), CmdGetInstanceStatus = new() { InstanceId = Id(env, rng) } }.ToByteArray(),
                        _ => KongWire.CloseInstance(Seq(rng), rng.Next(1, 1000)).ToByteArray(),
                    }));
                all.AddRange(Mutate.RandomBytes(rng, 0, 64));
                chunks.Add([.. all]);
                return ("pb-pipelined-commands", chunks);
            }
            default:
            {
                string[] phases = ["rewrite", "log", "header_filter", "response", "certificate", "", "ACCESS", "access\0"];
                chunks.Add(PbWire.Frame(KongWire.HandleEvent(Seq(rng), rng.Next(3) == 0 ? rng.Next(1, int.MaxValue) : Id(env, rng),
                    phases[rng.Next(phases.Length)]).ToByteArray()));
                return ("pb-other-phase-or-instance", chunks);
            }
        }
    }

    private static byte[] WrongWireType(FuzzEnv env, Random rng)
    {
        int id = Id(env, rng);
        return rng.Next(6) switch
        {
            0 => [.. PbWire.Tag(1, 2), 0x01, 0x02, .. PbWire.Bytes(36, [.. PbWire.Int(1, (ulong)id), .. PbWire.Str(2, "access")])], // sequence as bytes
            1 => [.. PbWire.Int(1, 2), .. PbWire.Int(36, 5)],                                                              // command as a varint
            2 => [.. PbWire.Int(1, 2), .. PbWire.Bytes(36, [.. PbWire.Str(1, "x"), .. PbWire.Str(2, "access")])],                 // instance id as bytes
            3 => [.. PbWire.Int(1, 2), .. PbWire.Tag(36, 5), 1, 2, 3, 4],                                                  // fixed32
            4 => [.. PbWire.Int(1, 2), .. PbWire.Tag(36, 3), .. PbWire.Tag(36, 4)],                                           // a group
            _ => [.. PbWire.Int(1, 2), .. PbWire.Tag(36, rng.Next(6, 8)), 0, 0, 0],                                      // wire types 6, 7
        };
    }

    /// <summary>StartInstance with a hostile config: an answer or a close; an instance it did start is closed again.</summary>
    private static async Task<string> BadConfigAsync(FuzzEnv env, Random rng, RawConn c, int index)
    {
        var config = Mutate.HostileConfig(rng, env.ConfigJson, env.Issuer);
        long seq = Seq(rng);
        var call = new RpcCall { Sequence = seq, CmdStartInstance = new CmdStartInstance { Name = Plugin, Config = ByteString.CopyFrom(config) } };
        if (!await c.SendFrameAsync(call.ToByteArray())) { env.Stats.Closed(); return "pb-bad-config"; }
        var reply = await c.ReadFrameAsync();
        if (reply is null) { env.Stats.Closed(); return "pb-bad-config"; }
        env.Stats.Answer();
        var ret = RpcReturn.Parser.ParseFrom(reply);
        if (ret.Sequence != seq) env.Stats.Violation(index, "pb-bad-config", $"sequence {ret.Sequence} echoed for {seq}");
        if (ret.InstanceStatus is { InstanceId: > 0 } st)
        {
            await c.SendFrameAsync(KongWire.CloseInstance(seq + 1, st.InstanceId).ToByteArray());
            if (await c.ReadFrameAsync() is not null) env.Stats.Answer();
        }
        return "pb-bad-config";
    }

    private enum Scenario { Drop, WrongType, Garbage, HostileHeaders, ControlValid, ControlInvalid, ValidThenDrop, ExtraFrames }

    /// <summary>An access event played by a hostile Kong: the replies to the plugin's PDK calls are fuzzed.</summary>
    private static async Task<string> EventAsync(FuzzEnv env, Random rng, RawConn c, int index)
    {
        var scenario = (Scenario)rng.Next(8);
        string kind = "pb-event-" + scenario.ToString().ToLowerInvariant();
        long seq = Seq(rng);
        if (!await c.SendFrameAsync(KongWire.HandleEvent(seq, Id(env, rng), "access").ToByteArray())) { env.Stats.Closed(); return kind; }

        bool presentedValid = false, allowed = false, exited = false;
        int exitStatus = 0, steps = 0;
        int dropAt = scenario is Scenario.ValidThenDrop ? rng.Next(1, 6) : int.MaxValue;
        while (steps < 24)
        {
            var method = await c.ReadFrameAsync();
            if (method is null) { env.Stats.Closed(); break; }
            env.Stats.Answer();
            if (method.Length == 0)
            {
                var ret = await c.ReadFrameAsync();
                if (ret is null) { env.Stats.Violation(index, kind, "end of event without RpcReturn"); break; }
                if (RpcReturn.Parser.ParseFrom(ret).Sequence != seq) env.Stats.Violation(index, kind, "RpcReturn with the wrong sequence");
                allowed = true;
                break;
            }
            var args = await c.ReadFrameAsync();
            if (args is null) { env.Stats.Violation(index, kind, "a PDK call without its argument frame"); break; }
            string name = Encoding.ASCII.GetString(method);
            if (name == "kong.response.exit")
            {
                exited = true;
                exitStatus = ExitArgs.Parser.ParseFrom(args).Status;
                break;
            }
            if (steps == 0 && name != "kong.request.get_headers")
                env.Stats.Violation(index, kind, "first PDK call was " + name);
            if (steps++ >= dropAt) break;

            byte[][] replies;
            if (name == "kong.request.get_headers")
                (replies, presentedValid) = HeadersReply(env, rng, scenario);
            else
                replies = [rng.Next(10) == 0 && scenario is Scenario.Garbage or Scenario.WrongType ? Mutate.RandomBytes(rng, 0, 64) : []];
            if (scenario == Scenario.Drop && replies.Length == 0) break;
            bool sent = true;
            foreach (var r in replies) sent &= await c.SendFrameAsync(r);
            if (!sent) { env.Stats.Closed(); break; }
        }

        if (allowed) env.Stats.EventCompleted();
        if (exited) env.Stats.Exit();
        if (allowed && !presentedValid)
            env.Stats.Violation(index, kind, "an access event ended ALLOWED without the valid token");
        if (scenario == Scenario.ControlValid)
        {
            if (allowed) env.Stats.ControlAllowed();
            else env.Stats.Violation(index, kind, $"the valid token was not allowed (exit {exitStatus})");
        }
        if (scenario == Scenario.ControlInvalid)
        {
            if (exited && exitStatus is 401 or 503) env.Stats.ControlRefused();
            else if (exited && exitStatus == 500) env.Stats.ControlRefusedWith500(); // fail-closed, but see HostileTokenTests' skipped bug test
            else env.Stats.Violation(index, kind, $"a bad token was not refused with 401/503 (allowed={allowed}, exit={exitStatus})");
        }
        return kind;
    }

    /// <summary>The reply (or replies) to kong.request.get_headers for a scenario; true when it carries the valid token correctly.</summary>
    private static (byte[][] Replies, bool Valid) HeadersReply(FuzzEnv env, Random rng, Scenario scenario)
    {
        string bad = env.BadTokens[rng.Next(env.BadTokens.Length)];
        string Mutated() => Mutate.Token(rng, env.ValidToken);
        switch (scenario)
        {
            case Scenario.Drop:
                return ([], false);
            case Scenario.ControlValid:
            case Scenario.ValidThenDrop:
                return ([PbWire.Headers([("host", "api.test"), ("authorization", "Bearer " + env.ValidToken)])], true);
            case Scenario.ControlInvalid:
                return ([PbWire.Headers([("host", "api.test"), ("authorization", "Bearer " + (rng.Next(2) == 0 ? bad : Mutated()))])], false);
            case Scenario.Garbage:
                return ([Mutate.RandomBytes(rng, 0, 512)], false);
            case Scenario.WrongType:
                return ([rng.Next(5) switch
                {
                    0 => new Kong.PluginServer.Protocol.ProtoBuf.Messages.String { V = "Bearer " + env.ValidToken }.ToByteArray(),
                    1 => new Int { V = 1000 }.ToByteArray(),
                    2 => new Number { V = 1e308 }.ToByteArray(),
                    3 => new Bool { V = true }.ToByteArray(),
                    _ => new ExitArgs { Status = 200, Body = ByteString.CopyFromUtf8("x") }.ToByteArray(),
                }], false);
            case Scenario.ExtraFrames:
            {
                var frames = new List<byte[]> { PbWire.Headers([("authorization", "Bearer " + Mutated())]) };
                int n = rng.Next(1, 5);
                for (int i = 0; i < n; i++) frames.Add(rng.Next(2) == 0 ? [] : Mutate.RandomBytes(rng, 0, 128));
                return ([.. frames], false);
            }
            default: // hostile headers
            {
                var auth = Encoding.UTF8.GetBytes("authorization");
                int variant = rng.Next(9);
                byte[] reply = variant switch
                {
                    // the valid token twice (two header lines): must be token_malformed, never allowed
                    0 => PbWire.StructEntry(auth, PbWire.Bytes(6, [.. PbWire.Bytes(1, PbWire.StringValue(Encoding.UTF8.GetBytes("Bearer " + env.ValidToken))), .. PbWire.Bytes(1, PbWire.StringValue(Encoding.UTF8.GetBytes("Bearer " + env.ValidToken)))])),
                    1 => PbWire.StructEntry(auth, PbWire.NestedValue(rng.Next(60, 200), rng.Next(2) == 0)),
                    2 => PbWire.Headers(Enumerable.Range(0, rng.Next(1000, 5000)).Select(i => ($"x-h{i}", "v")).Append(("authorization", "Bearer " + bad))),
                    3 => PbWire.Headers([("authorization", "Bearer " + new string('a', rng.Next(9000, 300_000)))]),
                    4 => PbWire.StructEntry(Mutate.HostileText(rng), PbWire.StringValue(Mutate.HostileText(rng))),
                    5 => PbWire.StructEntry(auth, PbWire.StringValue([.. "Bearer "u8, .. Encoding.ASCII.GetBytes(env.ValidToken[..20]), 0xff, 0xfe, .. Encoding.ASCII.GetBytes(env.ValidToken[20..])])),
                    6 => PbWire.StructEntry(auth, rng.Next(3) switch { 0 => [.. PbWire.Tag(2, 1), .. new byte[8]], 1 => PbWire.Int(4, 1), _ => PbWire.Int(1, 1) }),
                    7 => Mutate.Bytes(rng, PbWire.Headers([("authorization", "Bearer " + env.ValidToken)])),
                    _ => PbWire.Headers([("authorization", "bearer\t" + Mutated() + " ")]),
                };
                // a random edit of a valid header map may leave the token intact: then an allow is legitimate
                return ([reply], variant == 7 && reply.AsSpan().IndexOf(Encoding.ASCII.GetBytes(env.ValidToken)) >= 0);
            }
        }
    }
}
