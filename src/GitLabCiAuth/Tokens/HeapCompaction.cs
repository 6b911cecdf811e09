namespace GitLabCiAuth.Tokens;

/// <summary>
/// Gives back the memory a burst of newly cached tokens leaves behind. Each verified token is allocated among ~8 KB of
/// short-lived parsing garbage, so its few hundred long-lived bytes end up scattered over GC regions, and the GC keeps
/// the regions it freed committed: after 10,000 new tokens the process held about three times the live heap. Once
/// <see cref="Threshold"/> entries have been added, one aggressive (compacting, decommitting) gen2 collection runs on a
/// thread-pool thread when additions pause for <see cref="Quiet"/>, or at most every <see cref="MaxInterval"/> while
/// they go on; a warm cache (hits only) never triggers one.
/// </summary>
internal static class HeapCompaction
{
    public const int Threshold = 2048;
    public static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(250);
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(30);

    private static int s_added;
    private static long s_lastAddTicks;
    private static long s_lastCompactionTicks = Environment.TickCount64;
    private static int s_armed;
    private static readonly Timer s_timer = new(static _ => OnTimer(), null, Timeout.Infinite, Timeout.Infinite);

    /// <summary>Counts a new long-lived cache entry.</summary>
    public static void EntryAdded()
    {
        Volatile.Write(ref s_lastAddTicks, Environment.TickCount64);
        if (Interlocked.Increment(ref s_added) < Threshold) return;
        if (Interlocked.Exchange(ref s_armed, 1) == 0) s_timer.Change(Quiet, Timeout.InfiniteTimeSpan);
    }

    private static void OnTimer()
    {
        long now = Environment.TickCount64;
        bool quiet = now - Volatile.Read(ref s_lastAddTicks) >= (long)Quiet.TotalMilliseconds;
        bool overdue = now - s_lastCompactionTicks >= (long)MaxInterval.TotalMilliseconds;
        if (!quiet && !overdue)
        {
            s_timer.Change(Quiet, Timeout.InfiniteTimeSpan);
            return;
        }
        Interlocked.Exchange(ref s_added, 0);
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        s_lastCompactionTicks = Environment.TickCount64;
        Volatile.Write(ref s_armed, 0);
    }
}
