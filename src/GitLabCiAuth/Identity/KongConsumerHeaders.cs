namespace GitLabCiAuth.Identity;

/// <summary>
/// The headers Kong's own auth plugins (jwt, key-auth, openid-connect...) set or clear on every request they handle,
/// and upstreams trust as Kong's word on who called. This plugin follows the same convention, so a value a client
/// sends under one of these names never reaches the upstream from a route that runs it.
/// </summary>
public static class KongConsumerHeaders
{
    /// <summary>The mapped Kong Consumer's id (removed when no Consumer is mapped).</summary>
    public const string ConsumerId = "X-Consumer-ID";

    /// <summary>The mapped Consumer's custom_id (removed when it has none).</summary>
    public const string ConsumerCustomId = "X-Consumer-Custom-ID";

    /// <summary>The mapped Consumer's username (removed when it has none).</summary>
    public const string ConsumerUsername = "X-Consumer-Username";

    /// <summary>The Kong credential's id, <c>gitlab-project-16234</c> with the default <c>credential_template</c>.</summary>
    public const string CredentialIdentifier = "X-Credential-Identifier";

    /// <summary><c>true</c> when the <c>anonymous</c> Consumer took over; removed otherwise.</summary>
    public const string Anonymous = "X-Anonymous-Consumer";

    public static IReadOnlyList<string> All { get; } = [ConsumerId, ConsumerCustomId, ConsumerUsername, CredentialIdentifier, Anonymous];
}
