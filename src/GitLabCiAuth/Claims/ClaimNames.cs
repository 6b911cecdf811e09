using System.Collections.Concurrent;

namespace GitLabCiAuth.Claims;

/// <summary>
/// One string instance per claim name, process-wide. Everything that names a claim when a config is compiled (the
/// retained names, rule conditions, identity headers, templates, the log record) takes its name from here, so a
/// <see cref="ClaimSet"/> lookup finds it by reference before it compares any characters. Names come from configs
/// and code only, never from tokens; the table is bounded all the same (<see cref="NameTable"/>).
/// </summary>
public static class ClaimNames
{
    public const int MaxNames = 4096;
    private static readonly NameTable s_names = new(MaxNames);

    /// <summary><c>iss</c>, which the log record and templates read whatever the config says.</summary>
    public static readonly string Issuer = Canonical("iss");

    /// <summary>The process's instance of <paramref name="name"/>.</summary>
    public static string Canonical(string name) => s_names.Canonical(name);

    public static string[] Canonical(IEnumerable<string> names) => names.Select(Canonical).ToArray();

    /// <summary>The process's instance of <paramref name="name"/> when some config or code names it, else <paramref name="name"/> itself (a token's own names do not grow the table).</summary>
    public static string IfKnown(string name) => s_names.IfKnown(name);
}

/// <summary>
/// Strings by their text, one instance each, up to a bound: past it, a new text is returned as it is (a lookup of it
/// then compares characters, with the same result).
/// </summary>
internal sealed class NameTable(int maxNames)
{
    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);

    public int Count => _names.Count;

    public string Canonical(string name)
    {
        if (_names.TryGetValue(name, out var known)) return known;
        return _names.Count >= maxNames ? name : _names.GetOrAdd(name, name);
    }

    public string IfKnown(string name) => _names.TryGetValue(name, out var known) ? known : name;
}
