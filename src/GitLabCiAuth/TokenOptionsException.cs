namespace GitLabCiAuth;

/// <summary>
/// Invalid token validation or key source options (<see cref="Tokens.TokenValidationOptions"/>, a static JWKS, a CA
/// bundle); the message starts with the snake_case field name. In the root namespace: both Keys and Tokens raise it.
/// </summary>
public sealed class TokenOptionsException : ArgumentException
{
    public TokenOptionsException(string message) : base(message) { }

    /// <summary>The snake_case field the message names (text before the first ':').</summary>
    public string Field => Message.Split(':', 2)[0];
}
