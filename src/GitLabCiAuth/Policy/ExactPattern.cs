namespace GitLabCiAuth.Policy;

/// <summary>Ordinal equality with a literal value (a glob without wildcards, escapes already removed).</summary>
internal sealed class ExactPattern : ClaimPattern
{
    private readonly string _value;

    public ExactPattern(string value, string source) : base(source) => _value = value;

    public string Value => _value;

    public override bool IsMatch(string value) => string.Equals(value, _value, StringComparison.Ordinal);
}
