using System.Text;
using Resilience.Tests.Infrastructure;

namespace Resilience.Tests.Fuzz;

/// <summary>
/// Seeded MsgPack:1 fuzz cases (msgpack-rpc garbage, non-array requests, bad msgid/method/params types, unknown
/// methods, deep nesting, huge and invalid-UTF-8 strings, reserved and ext types, truncation, hostile StartInstance
/// configs, and access events whose Step data is fuzzed). Same oracles as <see cref="PbFuzzer"/>. Step cases use
/// only event ids of their own events or ids far above the server's counter, so they never touch the well-behaved
/// traffic's events (a peer on the socket could: see SECURITY.md).
/// </summary>
public static class MpFuzzer
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
    private static uint MsgId(Random rng) => (uint)rng.Next(1, int.MaxValue);
    /// <summary>An event id far above anything the server has handed out (its counter starts at 1).</summary>
    private static int FarEventId(Random rng) => rng.Next(1 << 30, int.MaxValue);

    /// <summary>A random msgpack value (any type, nesting, ext, reserved 0xc1; unless <paramref name="complete"/>, also
    /// raw bytes and lengths that lie, which may leave the message incomplete).</summary>
    public static void Value(MpWire w, Random rng, int depth = 0, bool complete = false)
    {
        int pick = rng.Next(depth > 3 ? 12 : 15);
        if (complete && pick is 11 or 14) pick = 5;
        switch (pick)
        {
            case 0: w.Nil(); break;
            case 1: w.Bool(rng.Next(2) == 0); break;
            case 2: w.Int(rng.NextInt64(long.MinValue, long.MaxValue)); break;
            case 3: w.UInt64(ulong.MaxValue - (ulong)rng.Next(100)); break;
            case 4: w.Float(rng.Next(5) switch { 0 => double.NaN, 1 => double.PositiveInfinity, 2 => 1e308, 3 => -0.0, _ => rng.NextDouble() }); break;
            case 5: w.Str(new string((char)rng.Next(32, 127), rng.Next(0, 40))); break;
            case 6: w.StrBytes(Mutate.HostileText(rng), rng.Next(2) == 0 ? 0 : 8 << rng.Next(3)); break;
            case 7: w.Bin(Mutate.RandomBytes(rng, 0, 300)); break;
            case 8: w.Ext((sbyte)rng.Next(-128, 128), Mutate.RandomBytes(rng, 1, 1 << rng.Next(5))); break;
            case 9: w.Raw(0xc1); break;                                  // reserved, never valid
            case 10: w.Int(rng.Next(-40, 200)); break;
            case 11: w.Raw(Mutate.RandomBytes(rng, 1, 8)); break;
            case 12:
            {
                int n = rng.Next(0, 5);
                w.Array(n);
                for (int i = 0; i < n; i++) Value(w, rng, depth + 1, complete);
                break;
            }
            case 13:
            {
                int n = rng.Next(0, 5);
                w.Map(n);
                for (int i = 0; i < n; i++) { Value(w, rng, depth + 1, complete); Value(w, rng, depth + 1, complete); }
                break;
            }
            default: w.Array(rng.Next(1, 100_000)); break;           // a length that lies
        }
    }

    private static byte[] Nested(Random rng, int depth, bool maps)
    {
        var w = new MpWire();
        for (int i = 0; i < depth; i++)
        {
            if (maps) w.Map(1).Str("k");
            else w.Array(1);
        }
        return w.Nil().ToArray();
    }

    private static (string Kind, List<byte[]> Chunks) Static(FuzzEnv env, Random rng)
    {
        var chunks = new List<byte[]>();
        var w = new MpWire();
        switch (rng.Next(17))
        {
            case 0:
                chunks.Add(Mutate.RandomBytes(rng, 1, 4096));
                return ("mp-random-bytes", chunks);
            case 1:
                Value(w, rng);
                chunks.Add(w.ToArray());
                return ("mp-random-value", chunks);
            case 2:
            {
                int[] sizes = [0, 1, 2, 3, 5, 6, 100];
                int n = sizes[rng.Next(sizes.Length)];
                w.Array(n);
                for (int i = 0; i < n; i++) Value(w, rng);
                chunks.Add(w.ToArray());
                return ("mp-wrong-arity", chunks);
            }
            case 3:
                w.Array(4);
                switch (rng.Next(6)) { case 0: w.Int(1); break; case 1: w.Int(2); break; case 2: w.Int(-1); break; case 3: w.Str("0"); break; case 4: w.Nil(); break; default: w.Float(0.5); break; }
                w.Int(MsgId(rng)).Str("plugin.GetStatus").Array(0);
                chunks.Add(w.ToArray());
                return ("mp-bad-type-field", chunks);
            case 4:
                w.Array(4).Int(0);
                switch (rng.Next(9))
                {
                    case 0: w.Int(-1); break;
                    case 1: w.Str("1"); break;
                    case 2: w.Float(1.5); break;
                    case 3: w.Nil(); break;
                    case 4: w.UInt64(ulong.MaxValue); break;
                    case 5: w.Int(1L << 32); break;
                    case 6: w.Bool(true); break;
                    case 7: w.Array(1).Int(1); break;
                    default: w.Map(0); break;
                }
                w.Str("plugin.GetStatus").Array(0);
                chunks.Add(w.ToArray());
                return ("mp-bad-msgid", chunks);
            case 5:
                w.Array(4).Int(0).Int(MsgId(rng));
                switch (rng.Next(7))
                {
                    case 0: w.Int(7); break;
                    case 1: w.Nil(); break;
                    case 2: w.Bin("plugin.GetStatus"u8); break;
                    case 3: w.Array(0); break;
                    case 4: w.StrBytes(Mutate.HostileText(rng)); break;
                    case 5: w.Str(new string('m', rng.Next(1000, 200_000))); break;
                    default: w.Str(""); break;
                }
                w.Array(0);
                chunks.Add(w.ToArray());
                return ("mp-bad-method", chunks);
            case 6:
            {
                string[] names = ["plugin.handleevent", "plugin.Foo", "plugin.", "HandleEvent", "plugin.SetPluginDir", "plugin.GetPluginInfo", "rpc.shutdown", "plugin.StepError"];
                var r = MpWire.Request(MsgId(rng), names[rng.Next(names.Length)], 1);
                Value(r, rng);
                chunks.Add(r.ToArray());
                return ("mp-unknown-or-odd-method", chunks);
            }
            case 7:
            {
                string[] methods = ["plugin.HandleEvent", "plugin.Step", "plugin.StartInstance", "plugin.CloseInstance", "plugin.StepMultiMap"];
                w.Array(4).Int(0).Int(MsgId(rng)).Str(methods[rng.Next(methods.Length)]);
                if (rng.Next(2) == 0) Value(w, rng); // params not necessarily an array
                else { int n = rng.Next(0, 4); w.Array(n); for (int i = 0; i < n; i++) Value(w, rng); }
                chunks.Add(w.ToArray());
                return ("mp-bad-params", chunks);
            }
            case 8:
            {
                var r = MpWire.Request(MsgId(rng), "plugin.HandleEvent", 1).Map(2).Str("InstanceId");
                switch (rng.Next(8))
                {
                    case 0: r.Str(Id(env, rng).ToString(System.Globalization.CultureInfo.InvariantCulture)); break;
                    case 1: r.Float(Id(env, rng) + 0.5); break;
                    case 2: r.Int(-Id(env, rng)); break;
                    case 3: r.UInt64(ulong.MaxValue); break;
                    case 4: r.Float(1e300); break;
                    case 5: r.Float(double.NaN); break;
                    case 6: r.Nil(); break;
                    default: r.Int(Id(env, rng)); break;
                }
                r.Str("EventName");
                string[] phases = ["log", "rewrite", "response", "header_filter", "", "ACCESS"];
                switch (rng.Next(4))
                {
                    case 0: r.Int(1); break;
                    case 1: r.StrBytes(Mutate.HostileText(rng)); break;
                    case 2: r.Nil(); break;
                    default: r.Str(phases[rng.Next(phases.Length)]); break;
                }
                chunks.Add(r.ToArray());
                return ("mp-handle-event-bad-fields", chunks);
            }
            case 9:
            {
                var r = MpWire.Request(MsgId(rng), rng.Next(2) == 0 ? "plugin.Step" : "plugin.StepMultiMap", 1);
                int n = rng.Next(0, 4);
                r.Map(n);
                for (int i = 0; i < n; i++)
                {
                    switch (rng.Next(4))
                    {
                        case 0:
                            r.Str("EventId");
                            switch (rng.Next(5)) { case 0: r.Str("1"); break; case 1: r.Float(2.5); break; case 2: r.Nil(); break; case 3: r.Int(-FarEventId(rng)); break; default: r.Int(FarEventId(rng)); break; }
                            break;
                        case 1: r.Str("Data"); Value(r, rng); break;
                        case 2: Value(r, rng); Value(r, rng); break;
                        default: r.Int(1); r.Int(FarEventId(rng)); break;
                    }
                }
                chunks.Add(r.ToArray());
                return ("mp-step-bad", chunks);
            }
            case 10:
            {
                var r = MpWire.Request(MsgId(rng), "plugin.CloseInstance", 1);
                switch (rng.Next(5)) { case 0: r.Str("x"); break; case 1: r.Map(1).Str("InstanceId").Str("1"); break; case 2: r.Nil(); break; case 3: r.UInt64(ulong.MaxValue); break; default: r.Float(1e20); break; }
                chunks.Add(r.ToArray());
                return ("mp-close-instance-bad", chunks);
            }
            case 11:
            {
                var r = MpWire.Request(MsgId(rng), "plugin.HandleEvent", 1);
                chunks.Add([.. r.ToArray(), .. Nested(rng, rng.Next(100, 200_000), rng.Next(2) == 0)]);
                return ("mp-deep-nesting", chunks);
            }
            case 12:
            {
                var r = MpWire.Request(MsgId(rng), "plugin.StartInstance", 1).Map(2).Str("Name").Str(Plugin).Str("Config");
                int n = rng.Next(64 * 1024, 1024 * 1024);
                if (rng.Next(2) == 0) r.StrBytes(Encoding.ASCII.GetBytes(new string(' ', n)), 32);
                else r.StrBytes(new byte[rng.Next(0, 1024)], 32, declaredLength: n); // a length that lies
                chunks.Add(r.ToArray());
                return ("mp-huge-or-lying-string", chunks);
            }
            case 13:
            {
                var r = MpWire.Request(MsgId(rng), "plugin.GetStatus", 2);
                r.Ext((sbyte)-1, new byte[rng.Next(2) == 0 ? 4 : 8]); // timestamp ext
                r.Raw(0xc1);
                chunks.Add(r.ToArray());
                return ("mp-reserved-and-ext", chunks);
            }
            case 14:
            {
                var full = MpWire.Request(MsgId(rng), "plugin.HandleEvent", 1).Object(("InstanceId", x => x.Int(Id(env, rng))), ("EventName", x => x.Str("access"))).ToArray();
                chunks.Add(full[..rng.Next(1, full.Length)]);
                return ("mp-truncated", chunks);
            }
            case 15:
            {
                var all = new List<byte>();
                int n = rng.Next(2, 8);
                for (int i = 0; i < n; i++)
                    all.AddRange(rng.Next(2) == 0 ? MpWire.Request(MsgId(rng), "plugin.GetStatus", 0).ToArray() : MpWire.Request(MsgId(rng), "plugin.Nope", 0).ToArray());
                all.AddRange(Mutate.RandomBytes(rng, 0, 32));
                chunks.Add([.. all]);
                return ("mp-pipelined", chunks);
            }
            default:
            {
                // str8 forms (lua-MessagePack never writes them) and odd but valid encodings of a real request
                var r = new MpWire().Array(4).Raw(0xcc, 0).Raw(0xce, 0, 0, 0, 5).StrBytes("plugin.GetStatus"u8, 8).Array(0);
                chunks.Add(r.ToArray());
                return ("mp-odd-encodings", chunks);
            }
        }
    }

    /// <summary>A response <c>[1, msgid, error, result]</c>, or null on EOF; a violation when it is not one.</summary>
    private static async Task<List<object?>?> ReadResponseAsync(FuzzEnv env, RawConn c, int index, string kind, uint msgId)
    {
        var (v, eof) = await c.ReadMsgPackAsync();
        if (eof) { env.Stats.Closed(); return null; }
        env.Stats.Answer();
        if (v is not List<object?> { Count: 4 } msg || msg[0] is not 1.0)
        {
            env.Stats.Violation(index, kind, "not a msgpack-rpc response: " + Describe(v));
            return null;
        }
        if (msg[1] is not double id || id != msgId) env.Stats.Violation(index, kind, $"msgid {Describe(msg[1])} echoed for {msgId}");
        if (msg[2] is not (null or string)) env.Stats.Violation(index, kind, "a non-string error: " + Describe(msg[2]));
        return msg;
    }

    private static string Describe(object? v) => v switch
    {
        null => "nil",
        List<object?> l => "[" + string.Join(",", l.Take(4).Select(Describe)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(",", d.Take(4).Select(kv => kv.Key + "=" + Describe(kv.Value))) + "}",
        byte[] b => "bin" + b.Length,
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private static async Task<string> BadConfigAsync(FuzzEnv env, Random rng, RawConn c, int index)
    {
        const string kind = "mp-bad-config";
        var config = Mutate.HostileConfig(rng, env.ConfigJson, env.Issuer);
        uint msgId = MsgId(rng);
        var req = MpWire.Request(msgId, "plugin.StartInstance", 1).Map(2).Str("Name").Str(Plugin).Str("Config").StrBytes(config).ToArray();
        if (!await c.SendAsync(req)) { env.Stats.Closed(); return kind; }
        var resp = await ReadResponseAsync(env, c, index, kind, msgId);
        if (resp?[3] is Dictionary<string, object?> result && result.TryGetValue("Id", out var idv) && idv is double id)
        {
            var close = MpWire.Request(msgId + 1, "plugin.CloseInstance", 1).Int((long)id).ToArray();
            if (await c.SendAsync(close)) await ReadResponseAsync(env, c, index, kind, msgId + 1);
        }
        return kind;
    }

    private enum Scenario { Drop, WrongType, Garbage, HostileHeaders, ControlValid, ControlInvalid, ValidThenDrop, OtherConnection }

    /// <summary>An access event whose Step data is fuzzed.</summary>
    private static async Task<string> EventAsync(FuzzEnv env, Random rng, RawConn c, int index)
    {
        var scenario = (Scenario)rng.Next(8);
        string kind = "mp-event-" + scenario.ToString().ToLowerInvariant();
        uint msgId = MsgId(rng);
        var start = MpWire.Request(msgId, "plugin.HandleEvent", 1).Object(("InstanceId", x => x.Int(Id(env, rng))), ("EventName", x => x.Str("access"))).ToArray();
        if (!await c.SendAsync(start)) { env.Stats.Closed(); return kind; }
        var resp = await ReadResponseAsync(env, c, index, kind, msgId);
        if (resp is null) { env.Stats.Violation(index, kind, "no answer to a valid HandleEvent"); return kind; }

        bool presentedValid = false, allowed = false, exited = false;
        double exitStatus = 0;
        int dropAt = scenario is Scenario.ValidThenDrop ? rng.Next(1, 6) : int.MaxValue;
        RawConn? other = null;
        try
        {
            for (int step = 0; step < 24; step++)
            {
                if (resp[2] is string error) { env.Stats.Violation(index, kind, "error during a valid event: " + error); break; }
                if (resp[3] is not Dictionary<string, object?> result || result.GetValueOrDefault("EventId") is not double eventId)
                {
                    env.Stats.Violation(index, kind, "a HandleEvent/Step result without EventId: " + Describe(resp[3]));
                    break;
                }
                var data = result.GetValueOrDefault("Data");
                if (data is "ret") { allowed = true; break; }
                if (data is not Dictionary<string, object?> call || call.GetValueOrDefault("Method") is not string method)
                {
                    env.Stats.Violation(index, kind, "a callback that is neither \"ret\" nor {Method, Args}: " + Describe(data));
                    break;
                }
                if (method == "kong.response.exit")
                {
                    exited = true;
                    if (call.GetValueOrDefault("Args") is List<object?> { Count: > 0 } a && a[0] is double s) exitStatus = s;
                    break;
                }
                if (step == 0 && method != "kong.request.get_headers") env.Stats.Violation(index, kind, "first PDK call was " + method);
                if (step >= dropAt || (scenario == Scenario.Drop && step == 0)) break;

                byte[] dataBytes;
                if (method == "kong.request.get_headers") (dataBytes, presentedValid) = HeadersData(env, rng, scenario);
                else dataBytes = scenario is Scenario.Garbage && rng.Next(5) == 0 ? ValueBytes(rng) : [0xc0];
                msgId++;
                var stepReq = MpWire.Request(msgId, method == "kong.request.get_headers" ? "plugin.StepMultiMap" : "plugin.Step", 1)
                    .Map(2).Str("EventId").Int((long)eventId).Str("Data").Raw(dataBytes).ToArray();
                // Kong checks a pooled connection out per RPC: steps may arrive on another connection
                var conn = c;
                if (scenario == Scenario.OtherConnection && rng.Next(2) == 0)
                {
                    other?.Dispose();
                    other = await RawConn.ConnectAsync(env.Socket);
                    conn = other;
                }
                if (!await conn.SendAsync(stepReq)) { env.Stats.Closed(); break; }
                resp = await ReadResponseAsync(env, conn, index, kind, msgId);
                if (resp is null) break;
            }
        }
        finally
        {
            if (other is not null)
            {
                other.HalfClose();
                if (!await other.WaitForCloseAsync()) env.Stats.Violation(index, kind, "the server did not close a half-closed connection");
                other.Dispose();
            }
        }

        if (allowed) env.Stats.EventCompleted();
        if (exited) env.Stats.Exit();
        if (allowed && !presentedValid) env.Stats.Violation(index, kind, "an access event ended ALLOWED without the valid token");
        if (scenario is Scenario.ControlValid or Scenario.OtherConnection)
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

    /// <summary>One complete msgpack value (an incomplete one would leave the server waiting for the rest, as it should).</summary>
    private static byte[] ValueBytes(Random rng)
    {
        var w = new MpWire();
        Value(w, rng, complete: true);
        return w.ToArray();
    }

    /// <summary>The Data of Kong's StepMultiMap for get_headers (name → array of strings, as Kong sends it), fuzzed per scenario.</summary>
    private static (byte[] Data, bool Valid) HeadersData(FuzzEnv env, Random rng, Scenario scenario)
    {
        static byte[] Headers(params (string Name, string[] Values)[] h)
        {
            var w = new MpWire().Map(h.Length);
            foreach (var (n, vs) in h)
            {
                w.Str(n).Array(vs.Length);
                foreach (var v in vs) w.Str(v);
            }
            return w.ToArray();
        }
        string bad = env.BadTokens[rng.Next(env.BadTokens.Length)];
        switch (scenario)
        {
            case Scenario.ControlValid:
            case Scenario.ValidThenDrop:
            case Scenario.OtherConnection:
                return (Headers(("host", ["api.test"]), ("authorization", ["Bearer " + env.ValidToken])), true);
            case Scenario.ControlInvalid:
                return (Headers(("host", ["api.test"]), ("authorization", ["Bearer " + (rng.Next(2) == 0 ? bad : Mutate.Token(rng, env.ValidToken))])), false);
            case Scenario.Garbage:
                return (ValueBytes(rng), false);
            case Scenario.WrongType:
            {
                var w = new MpWire();
                switch (rng.Next(6))
                {
                    case 0: w.Str("Bearer " + env.ValidToken); break;
                    case 1: w.Int(1000); break;
                    case 2: w.Array(1).Str("Bearer " + env.ValidToken); break;
                    case 3: w.Bin(Encoding.ASCII.GetBytes("Bearer " + env.ValidToken)); break;
                    case 4: w.Map(1).Int(1).Str("Bearer " + env.ValidToken); break;
                    default: w.Bool(true); break;
                }
                return (w.ToArray(), false);
            }
            default:
            {
                var w = new MpWire();
                switch (rng.Next(8))
                {
                    case 0: // the valid token twice: token_malformed, never allowed
                        w.Map(1).Str("authorization").Array(2).Str("Bearer " + env.ValidToken).Str("Bearer " + env.ValidToken); break;
                    case 1:
                        w.Map(1).Str("authorization").Raw(Nested(rng, rng.Next(60, 5000), rng.Next(2) == 0)); break;
                    case 2:
                    {
                        int n = rng.Next(1000, 5000);
                        w.Map(n + 1);
                        for (int i = 0; i < n; i++) w.Str("x-h" + i).Array(1).Str("v");
                        w.Str("authorization").Array(1).Str("Bearer " + bad);
                        break;
                    }
                    case 3: w.Map(1).Str("authorization").Array(1).Str("Bearer " + new string('a', rng.Next(9000, 300_000))); break;
                    case 4: w.Map(1).StrBytes(Mutate.HostileText(rng)).Array(1).StrBytes(Mutate.HostileText(rng)); break;
                    case 5: w.Map(1).Str("authorization").Array(1).StrBytes([.. "Bearer "u8, .. Encoding.ASCII.GetBytes(env.ValidToken[..20]), 0xff, .. Encoding.ASCII.GetBytes(env.ValidToken[20..])]); break;
                    case 6: w.Map(1).Str("authorization").Str("Bearer " + Mutate.Token(rng, env.ValidToken)); break; // a string, not an array
                    default: w.Map(1).Str("authorization").Array(1).Bin(Encoding.ASCII.GetBytes("Bearer " + Mutate.Token(rng, env.ValidToken))); break;
                }
                return (w.ToArray(), false);
            }
        }
    }
}
