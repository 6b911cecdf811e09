namespace Kong.PluginServer.Hosting;

/// <summary>
/// One command-line option of the host: its name (given with one dash or two, as Kong and the Go PDK accept), the
/// value it takes, its line of <c>--help</c> and what it does. The host's own options and a product's
/// (<see cref="KongPluginHostOptions.Options"/>) are declared the same way; the usage text is generated from them.
/// </summary>
public sealed class HostOption
{
    /// <summary>An option taking a value: <c>--name VALUE</c> or <c>--name=VALUE</c>.</summary>
    /// <param name="name">The name without dashes (<c>metrics-listen</c>).</param>
    /// <param name="valueName">The value's placeholder in the usage text (<c>HOST:PORT</c>).</param>
    /// <param name="help">The usage text's description; a <c>\n</c> starts a continuation line.</param>
    /// <param name="apply">Receives the value; throws <see cref="UsageException"/> for a bad one.</param>
    public HostOption(string name, string valueName, string help, Action<string> apply)
    {
        Name = Check(name);
        ValueName = string.IsNullOrWhiteSpace(valueName) ? throw new ArgumentException("a value option names its value", nameof(valueName)) : valueName;
        Help = help;
        _apply = apply;
    }

    /// <summary>A flag: <c>--name</c>.</summary>
    public HostOption(string name, string help, Action apply)
    {
        Name = Check(name);
        Help = help;
        _apply = _ => apply();
    }

    private readonly Action<string> _apply;

    /// <summary>The name, without dashes.</summary>
    public string Name { get; }

    /// <summary>Other names (<c>h</c> for <c>help</c>).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>The value placeholder; null for a flag.</summary>
    public string? ValueName { get; }

    public bool TakesValue => ValueName is not null;

    public string Help { get; }

    /// <summary>Shown with one dash (<c>-kong-prefix</c>, <c>-dump</c>: Kong's spelling); either form is accepted.</summary>
    public bool SingleDash { get; init; }

    /// <summary>The option as the usage text shows it: <c>-h, --help</c>, <c>-kong-prefix DIR</c>, <c>--socket PATH</c>.</summary>
    public string Synopsis
    {
        get
        {
            string main = (SingleDash ? "-" : "--") + Name + (ValueName is null ? "" : " " + ValueName);
            if (Aliases.Count == 0)
                return SingleDash && ValueName is null ? $"-{Name}, --{Name}" : main;
            return string.Join(", ", Aliases.Select(a => (a.Length == 1 ? "-" : "--") + a)) + ", " + main;
        }
    }

    internal bool Matches(string name)
    {
        if (name == Name) return true;
        foreach (var a in Aliases) if (a == name) return true;
        return false;
    }

    internal void Apply(string value) => _apply(value);

    private static string Check(string name) =>
        string.IsNullOrWhiteSpace(name) || name.StartsWith('-') || name.Contains('=') || name.Contains(' ')
            ? throw new ArgumentException($"an option name has no dashes, spaces nor '=': '{name}'", nameof(name))
            : name;
}

/// <summary>A line of the usage text's head: <c>usage: PROGRAM SYNOPSIS   DESCRIPTION</c>.</summary>
public sealed record HostUsage(string Synopsis, string Description);

/// <summary>
/// A subcommand run instead of the server when it is the first argument (gitlab-ci-auth's <c>check</c>, <c>demo</c>):
/// it gets the arguments after its name and returns the exit code; a <see cref="UsageException"/> it throws exits 2.
/// </summary>
public sealed class HostCommand(string name, Func<string[], int> run, params HostUsage[] usage)
{
    public string Name { get; } = name;
    public Func<string[], int> Run { get; } = run;

    /// <summary>Lines for the usage text's head (none: the command is not listed).</summary>
    public IReadOnlyList<HostUsage> Usage { get; } = usage;
}
