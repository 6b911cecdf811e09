using GitLabCiAuth.Keys;

namespace GitLabCiAuth.Tokens;

/// <summary>
/// LRU cache of verified tokens, keyed by the SHA-256 of the token bytes. Thread-safe: split into shards,
/// each with its own lock, dictionary and intrusive LRU list, so a hit allocates nothing and does no RSA work.
/// An entry is honoured only while (a) its deadline (exp + skew, and iat + max age + skew) has not passed and
/// (b) the exact key that verified it is still in the current usable key set (checked through the set's
/// generation, falling back to a kid lookup when the set changed). Capacity 0 disables the cache.
/// </summary>
public sealed class VerifiedTokenCache
{
    private sealed class Entry
    {
        public TokenHash Hash;
        public required TokenResult Result;
        public required SigningKey Key;
        public long Generation;
        public long DeadlineUtcTicks;
        public int Source;        // which of the validator's key sources verified it
        public Entry? Prev, Next;
    }

    private sealed class Shard
    {
        public readonly Lock Lock = new();
        public readonly Dictionary<TokenHash, Entry> Map = new();
        public Entry? Head, Tail;
        public long Hits, Misses, Evictions;
    }

    private readonly Shard[] _shards;
    private readonly int _shardCapacity;
    private readonly int _shardMask;

    public VerifiedTokenCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        var shards = capacity < 256 ? 1 : Math.Min(16, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount * 2));
        _shards = new Shard[shards];
        for (var i = 0; i < shards; i++) _shards[i] = new Shard();
        _shardMask = shards - 1;
        _shardCapacity = capacity == 0 ? 0 : (capacity + shards - 1) / shards;
    }

    public int Capacity { get; }

    public long Hits => Sum(static s => Volatile.Read(ref s.Hits));
    public long Misses => Sum(static s => Volatile.Read(ref s.Misses));
    public long Evictions => Sum(static s => Volatile.Read(ref s.Evictions));

    public int Count
    {
        get
        {
            var n = 0;
            foreach (var s in _shards) lock (s.Lock) n += s.Map.Count;
            return n;
        }
    }

    /// <summary>
    /// Returns the cached successful result when the token is cached and still good at <paramref name="now"/>
    /// under <paramref name="keys"/> (the current usable key set; null = none, never a hit). Dead entries are dropped.
    /// </summary>
    public bool TryGet(in TokenHash hash, DateTimeOffset now, KeySet? keys, out TokenResult result) =>
        TryGet(hash, now, keys, null, out result);

    /// <summary>
    /// As <see cref="TryGet(in TokenHash, DateTimeOffset, KeySet?, out TokenResult)"/>, with each entry checked against the
    /// usable keys of the source that verified it (<paramref name="sources"/>[source given to <see cref="Add"/>]): a
    /// token of one issuer is never honoured under another issuer's keys.
    /// </summary>
    public bool TryGet(in TokenHash hash, DateTimeOffset now, KeySourceLease[] sources, out TokenResult result) =>
        TryGet(hash, now, null, sources, out result);

    private bool TryGet(in TokenHash hash, DateTimeOffset now, KeySet? single, KeySourceLease[]? sources, out TokenResult result)
    {
        result = null!;
        if (_shardCapacity == 0) return false;
        var shard = _shards[hash.ShardBits & _shardMask];
        lock (shard.Lock)
        {
            if (!shard.Map.TryGetValue(hash, out var e))
            {
                shard.Misses++;
                return false;
            }
            var keys = sources is null ? single : sources[e.Source].GetUsableKeys();
            if (keys is null)
            {
                shard.Misses++; // keys unusable right now: let the slow path report it; keep the entry
                return false;
            }
            if (now.UtcTicks > e.DeadlineUtcTicks
                || (keys.Generation != e.Generation && !keys.ContainsKey(e.Key)))
            {
                RemoveLocked(shard, e);
                shard.Misses++;
                return false;
            }
            e.Generation = keys.Generation;
            MoveToFrontLocked(shard, e);
            shard.Hits++;
            result = e.Result;
            return true;
        }
    }

    /// <summary>Caches a successful result verified with <paramref name="key"/> from the set of <paramref name="generation"/>.</summary>
    public void Add(in TokenHash hash, TokenResult result, SigningKey key, long generation, DateTimeOffset deadline, int source = 0)
    {
        if (_shardCapacity == 0 || !result.IsValid) return;
        var shard = _shards[hash.ShardBits & _shardMask];
        lock (shard.Lock)
        {
            if (shard.Map.TryGetValue(hash, out var existing))
            {
                existing.Result = result;
                existing.Key = key;
                existing.Generation = generation;
                existing.DeadlineUtcTicks = deadline.UtcTicks;
                existing.Source = source;
                MoveToFrontLocked(shard, existing);
                return;
            }
            while (shard.Map.Count >= _shardCapacity && shard.Tail is not null)
            {
                RemoveLocked(shard, shard.Tail);
                shard.Evictions++;
            }
            var e = new Entry { Hash = hash, Result = result, Key = key, Generation = generation, DeadlineUtcTicks = deadline.UtcTicks, Source = source };
            shard.Map.Add(hash, e);
            e.Next = shard.Head;
            if (shard.Head is not null) shard.Head.Prev = e;
            shard.Head = e;
            shard.Tail ??= e;
        }
        HeapCompaction.EntryAdded();
    }

    public bool Remove(in TokenHash hash)
    {
        var shard = _shards[hash.ShardBits & _shardMask];
        lock (shard.Lock)
        {
            if (!shard.Map.TryGetValue(hash, out var e)) return false;
            RemoveLocked(shard, e);
            return true;
        }
    }

    public void Clear()
    {
        foreach (var s in _shards)
            lock (s.Lock)
            {
                s.Map.Clear();
                s.Head = s.Tail = null;
            }
    }

    private static void MoveToFrontLocked(Shard s, Entry e)
    {
        if (ReferenceEquals(s.Head, e)) return;
        // unlink
        if (e.Prev is not null) e.Prev.Next = e.Next;
        if (e.Next is not null) e.Next.Prev = e.Prev;
        if (ReferenceEquals(s.Tail, e)) s.Tail = e.Prev;
        // push front
        e.Prev = null;
        e.Next = s.Head;
        if (s.Head is not null) s.Head.Prev = e;
        s.Head = e;
        s.Tail ??= e;
    }

    private static void RemoveLocked(Shard s, Entry e)
    {
        s.Map.Remove(e.Hash);
        if (e.Prev is not null) e.Prev.Next = e.Next; else s.Head = e.Next;
        if (e.Next is not null) e.Next.Prev = e.Prev; else s.Tail = e.Prev;
        e.Prev = e.Next = null;
    }

    private long Sum(Func<Shard, long> f)
    {
        long n = 0;
        foreach (var s in _shards) n += f(s);
        return n;
    }
}
