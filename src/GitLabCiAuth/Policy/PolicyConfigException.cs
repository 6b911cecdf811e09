namespace GitLabCiAuth.Policy;

/// <summary>An invalid policy: the message names the rule and claim; <see cref="Field"/> is the config path.</summary>
public sealed class PolicyConfigException : Exception
{
    public PolicyConfigException(string field, string message, Exception? inner = null)
        : base(message, inner) => Field = field;

    /// <summary>The offending config field, e.g. <c>rules[2].claims.ref</c> or <c>rules</c>.</summary>
    public string Field { get; }
}
