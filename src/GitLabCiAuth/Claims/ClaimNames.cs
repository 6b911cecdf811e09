using System.Collections.Concurrent;

namespace GitLabCiAuth.Claims;

/// <summary>
/// One string instance per claim name, process-wide. Everything that names a claim when a config is compiled (the
/// retained names, rule conditions, identity headers, templates, the log record) takes its name from here, so a
/// <see cref="ClaimSet"/> lookup finds it by reference before it compares any characters. Names come from configs
/// and code only, never from tokens, so the table stays small.
/// </summary>
public static class ClaimNames
{
    private static readonly ConcurrentDictionary<string, string> s_names = new(StringComparer.Ordinal);

    /// <summary>The process's instance of <paramref name="name"/>.</summary>
    public static string Canonical(string name) => s_names.GetOrAdd(name, name);

    public static string[] Canonical(IEnumerable<string> names) => names.Select(Canonical).ToArray();

    /// <summary>The process's instance of <paramref name="name"/> when some config or code names it, else <paramref name="name"/> itself (a token's own names do not grow the table).</summary>
    public static string IfKnown(string name) => s_names.TryGetValue(name, out var known) ? known : name;
}
