using System.Collections.Concurrent;
using System.Text;

namespace Resilience.Tests.Fuzz;

/// <summary>What every fuzz case may use: the socket, the seed, live instance ids and the tokens (one valid, many not).</summary>
public sealed class FuzzEnv
{
    public required string Socket { get; init; }
    public required int Seed { get; init; }
    /// <summary>Instances started for the fuzz (a valid config), used by HandleEvent cases.</summary>
    public required int[] InstanceIds { get; init; }
    /// <summary>The one valid token: presented correctly it must be allowed (the controls).</summary>
    public required string ValidToken { get; init; }
    /// <summary>Tokens that must never be allowed.</summary>
    public required string[] BadTokens { get; init; }
    /// <summary>A valid config JSON (plus Kong's injected keys).</summary>
    public required string ConfigJson { get; init; }
    public required string Issuer { get; init; }
    public required int MaxFrameBytes { get; init; }
    public FuzzStats Stats => _stats ??= new FuzzStats(Seed);
    private FuzzStats? _stats;

    /// <summary>The generator of case <paramref name="index"/>: the same case for the same seed, whatever the scheduling.</summary>
    public Random Rng(int index) => new(unchecked((int)((uint)Seed * 2654435761u ^ (uint)index * 2246822519u)));

    /// <summary>Runs <paramref name="cases"/> cases on <paramref name="lanes"/> concurrent lanes; each case owns its connections.</summary>
    public async Task RunAsync(int cases, int lanes, Func<FuzzEnv, int, Task<string>> runCase, CancellationToken stop = default)
    {
        int next = -1;
        int only = Infrastructure.Bounds.EnvInt("RESILIENCE_FUZZ_ONLY", -1); // replay one case (with its seed)
        await Task.WhenAll(Enumerable.Range(0, lanes).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= cases) return;
                if (only >= 0 && i != only) continue;
                try
                {
                    Stats.Kind(await runCase(this, i));
                }
                catch (Exception e)
                {
                    Stats.Violation(i, "?", $"{e.GetType().Name}: {e.Message}");
                }
            }
        })));
    }
}

/// <summary>Counters and oracle violations of a fuzz run.</summary>
public sealed class FuzzStats(int seed)
{
    public int Seed { get; } = seed;

    private readonly ConcurrentDictionary<string, int> _kinds = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _violations = new();
    private long _cases, _violationCount, _controlsAllowed, _controlsRefused, _controlsRefused500, _eventsCompleted, _exits, _serverClosed, _answered;

    public long Cases => Interlocked.Read(ref _cases);
    public long ViolationCount => Interlocked.Read(ref _violationCount);
    public IReadOnlyCollection<string> Violations => _violations;
    /// <summary>Valid tokens presented correctly and allowed (shows the oracle can see an allow at all).</summary>
    public long ControlsAllowed => Interlocked.Read(ref _controlsAllowed);
    /// <summary>Bad tokens presented correctly and refused with 401/503.</summary>
    public long ControlsRefused => Interlocked.Read(ref _controlsRefused);
    /// <summary>Bad tokens refused with 500 instead of 401: still closed, but the wrong answer (a known bug: a mutated
    /// payload or header segment with invalid UTF-8 in a string the validator reads; see HostileTokenTests).</summary>
    public long ControlsRefusedWith500 => Interlocked.Read(ref _controlsRefused500);
    public long EventsCompleted => Interlocked.Read(ref _eventsCompleted);
    public long Exits => Interlocked.Read(ref _exits);
    /// <summary>Cases in which the server closed the connection before our half-close (it refused the input).</summary>
    public long ServerClosed => Interlocked.Read(ref _serverClosed);
    /// <summary>Complete messages the server answered.</summary>
    public long Answered => Interlocked.Read(ref _answered);

    public void Kind(string kind)
    {
        Interlocked.Increment(ref _cases);
        _kinds.AddOrUpdate(kind, 1, static (_, n) => n + 1);
    }

    public void Violation(int index, string kind, string what)
    {
        Interlocked.Increment(ref _violationCount);
        if (_violations.Count < 30) _violations.Enqueue($"case {index} ({kind}; replay: RESILIENCE_FUZZ_SEED={Seed} RESILIENCE_FUZZ_ONLY={index}): {what}");
    }

    public void ControlAllowed() => Interlocked.Increment(ref _controlsAllowed);
    public void ControlRefused() => Interlocked.Increment(ref _controlsRefused);
    public void ControlRefusedWith500() => Interlocked.Increment(ref _controlsRefused500);
    public void EventCompleted() => Interlocked.Increment(ref _eventsCompleted);
    public void Exit() => Interlocked.Increment(ref _exits);
    public void Closed() => Interlocked.Increment(ref _serverClosed);
    public void Answer() => Interlocked.Increment(ref _answered);

    public string KindTable() => string.Join(", ", _kinds.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}"));

    public override string ToString() =>
        $"{Cases} cases, {ViolationCount} violations; answered {Answered} messages, server closed {ServerClosed}, events completed {EventsCompleted}, exits {Exits}, controls allowed {ControlsAllowed} / refused {ControlsRefused} (+{ControlsRefusedWith500} refused with 500)";
}

/// <summary>Byte-level mutations and hostile values shared by both protocols' generators.</summary>
public static class Mutate
{
    private const string B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    public static byte[] RandomBytes(Random rng, int min, int max)
    {
        var b = new byte[rng.Next(min, max + 1)];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>1..4 random edits: bit flip, byte set, insert, delete, truncate, duplicate, interesting byte.</summary>
    public static byte[] Bytes(Random rng, byte[] input)
    {
        var b = new List<byte>(input);
        int edits = rng.Next(1, 5);
        for (int e = 0; e < edits; e++)
        {
            int at = b.Count == 0 ? 0 : rng.Next(b.Count);
            switch (rng.Next(7))
            {
                case 0 when b.Count > 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1 when b.Count > 0: b[at] = (byte)rng.Next(256); break;
                case 2: b.InsertRange(at, RandomBytes(rng, 1, 16)); break;
                case 3 when b.Count > 0: b.RemoveRange(at, Math.Min(b.Count - at, rng.Next(1, 8))); break;
                case 4 when b.Count > 0: b.RemoveRange(at, b.Count - at); break;
                case 5 when b.Count > 0:
                {
                    int n = Math.Min(b.Count - at, rng.Next(1, 16));
                    b.InsertRange(at, b.GetRange(at, n));
                    break;
                }
                case 6 when b.Count > 0: b[at] = Interesting[rng.Next(Interesting.Length)]; break;
            }
        }
        return [.. b];
    }

    private static readonly byte[] Interesting = [0x00, 0xff, 0x80, 0x7f, 0xc0, 0xc1, 0x0a, 0x0d, 0xfe, 0x01];

    /// <summary>A valid token changed in one character (never the last two signature characters, whose spare bits may
    /// decode to the same signature): always a different signing input or signature.</summary>
    public static string Token(Random rng, string token)
    {
        var chars = token.ToCharArray();
        int lastDot = token.LastIndexOf('.');
        int at;
        do at = rng.Next(chars.Length - 2); while (chars[at] == '.' || (at > lastDot && at >= chars.Length - 2));
        char c;
        do c = B64[rng.Next(B64.Length)]; while (c == chars[at]);
        chars[at] = c;
        return new string(chars);
    }

    /// <summary>Hostile strings for names and values.</summary>
    public static byte[] HostileText(Random rng) => rng.Next(9) switch
    {
        0 => [],
        1 => [0xff, 0xfe, 0xfd],                                   // invalid UTF-8
        2 => [0xed, 0xa0, 0x80],                                   // an encoded surrogate (invalid UTF-8)
        3 => [0xc0, 0x80],                                         // overlong NUL
        4 => Encoding.UTF8.GetBytes("a\r\nx-injected: 1\0\u2028"),
        5 => Encoding.UTF8.GetBytes(new string('A', rng.Next(1000, 70000))),
        6 => RandomBytes(rng, 1, 64),
        7 => Encoding.UTF8.GetBytes("ACCESS"),
        _ => Encoding.UTF8.GetBytes("\u00e9\u4e2d\U0001F600"),
    };

    /// <summary>Hostile config JSON for StartInstance (most must be refused; none may hurt the server).</summary>
    public static byte[] HostileConfig(Random rng, string valid, string issuer)
    {
        switch (rng.Next(14))
        {
            case 0: return Encoding.UTF8.GetBytes(new string('[', rng.Next(10, 100_000)));
            case 1: return Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", rng.Next(10, 20_000))) + "1" + new string('}', 3));
            case 2: return Encoding.UTF8.GetBytes(rng.Next(4) switch { 0 => "null", 1 => "[]", 2 => "42", _ => "\"x\"" });
            case 3: return [.. Encoding.UTF8.GetBytes(valid[..(valid.Length / 2)]), 0xff, 0xfe, .. Encoding.UTF8.GetBytes(valid[(valid.Length / 2)..])];
            case 4: return Encoding.UTF8.GetBytes(valid.Replace("\"issuer\"", "\"issuer\":1,\"issuer\"", StringComparison.Ordinal));
            case 5: return Encoding.UTF8.GetBytes(valid.Replace("\"rules\":", "\"rules\":\"re:(a+)+$\",\"x\":", StringComparison.Ordinal));
            case 6: return Encoding.UTF8.GetBytes(valid[..^1] + ",\"max_token_bytes\":1e400}");
            case 7: return Encoding.UTF8.GetBytes(valid[..^1] + ",\"clock_skew_seconds\":-99999999999999999999}");
            case 8: return Encoding.UTF8.GetBytes(valid[..^1] + ",\"jwks_uri\":\"file:///etc/passwd\"}");
            case 9: return Encoding.UTF8.GetBytes(valid[..^1] + $",\"rules\":[{{\"name\":\"r\",\"claims\":{{\"ref\":[\"re:{new string('(', 500)}\"]}}}}]}}");
            case 10: return Encoding.UTF8.GetBytes(valid[..^1] + ",\"upstream_headers\":{\"project_id\":\"X-Bad\\r\\nInjected\"}}");
            case 11: return Encoding.UTF8.GetBytes(valid[..^1] + ",\"audiences\":" + new string('[', 70) + new string(']', 70) + "}");
            case 12: return Bytes(rng, Encoding.UTF8.GetBytes(valid));
            default: return Encoding.UTF8.GetBytes("\uFEFF" + valid + " // comment");
        }
    }
}
