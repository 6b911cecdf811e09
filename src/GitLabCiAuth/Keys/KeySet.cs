namespace GitLabCiAuth.Keys;

/// <summary>
/// An immutable set of imported signing keys, indexed by <c>kid</c>. Every distinct set gets a new
/// process-wide <see cref="Generation"/>; a refetch that returns the same keys keeps the same set object
/// (and generation). Keys whose material did not change are carried over as the same <see cref="SigningKey"/>
/// object, so "is this exact key still in the set" is a reference comparison.
/// </summary>
public sealed class KeySet
{
    private static long s_generations;

    private readonly Dictionary<string, SigningKey> _byKid;
    private readonly Dictionary<string, SigningKey>.AlternateLookup<ReadOnlySpan<char>> _spanLookup;

    internal KeySet(Dictionary<string, SigningKey> byKid, string fingerprint, IReadOnlyList<string> droppedDuplicateKids)
    {
        _byKid = byKid;
        _spanLookup = byKid.GetAlternateLookup<ReadOnlySpan<char>>();
        Fingerprint = fingerprint;
        DroppedDuplicateKids = droppedDuplicateKids;
        Generation = Interlocked.Increment(ref s_generations);
    }

    /// <summary>Process-wide increasing version of this set.</summary>
    public long Generation { get; }

    public int Count => _byKid.Count;

    public IEnumerable<string> Kids => _byKid.Keys;

    public IEnumerable<SigningKey> Keys => _byKid.Values;

    /// <summary>Kids that appeared more than once in the JWKS and were refused (ambiguous).</summary>
    public IReadOnlyList<string> DroppedDuplicateKids { get; }

    /// <summary>Order-independent digest of the whole set's material.</summary>
    internal string Fingerprint { get; }

    public bool TryGetKey(string kid, out SigningKey key) => _byKid.TryGetValue(kid, out key!);

    public bool TryGetKey(ReadOnlySpan<char> kid, out SigningKey key) => _spanLookup.TryGetValue(kid, out key!);

    /// <summary>True when exactly this key object (same kid, same material) is still in the set.</summary>
    public bool ContainsKey(SigningKey key) =>
        _byKid.TryGetValue(key.Kid, out var k) && ReferenceEquals(k, key);
}
