namespace Resilience.Tests.Infrastructure;

/// <summary>
/// The only time limits in this suite: generous "did not hang" bounds. Nothing here asserts speed; a bound
/// that trips means something waited forever.
/// </summary>
public static class Bounds
{
    /// <summary>Anything that should happen promptly (a request, a close, a restart).</summary>
    public static readonly TimeSpan Hang = TimeSpan.FromSeconds(30);

    /// <summary>A whole scenario (a fuzz run, a load phase).</summary>
    public static readonly TimeSpan Scenario = TimeSpan.FromSeconds(120);

    /// <summary>The simulated Kong's cosocket timeout (Kong: 60 s).</summary>
    public static readonly TimeSpan KongTimeout = TimeSpan.FromSeconds(20);

    public static Task Within(this Task task, TimeSpan? bound = null) => task.WaitAsync(bound ?? Hang);
    public static Task<T> Within<T>(this Task<T> task, TimeSpan? bound = null) => task.WaitAsync(bound ?? Hang);
    public static Task<T> Within<T>(this ValueTask<T> task, TimeSpan? bound = null) => task.AsTask().WaitAsync(bound ?? Hang);
    public static Task Within(this ValueTask task, TimeSpan? bound = null) => task.AsTask().WaitAsync(bound ?? Hang);

    /// <summary>Polls <paramref name="condition"/> every 10 ms; fails after the bound.</summary>
    public static async Task Until(Func<bool> condition, string what, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Hang);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("timed out waiting until " + what);
            await Task.Delay(10);
        }
    }

    /// <summary>An integer from the environment (for the long runs), else the CI default.</summary>
    public static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.Integer,
            System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;
}
