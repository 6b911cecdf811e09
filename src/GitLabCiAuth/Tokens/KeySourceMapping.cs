using GitLabCiAuth.Keys;

namespace GitLabCiAuth.Tokens;

/// <summary>
/// The key source settings of the validation options' issuers: Tokens knows Keys, Keys does not know Tokens.
/// <c>KeySourceSettings.FromOptions(...)</c> reads as before wherever <c>GitLabCiAuth.Tokens</c> is imported.
/// </summary>
public static class KeySourceMapping
{
    extension(KeySourceSettings)
    {
        /// <summary>The key source of the options' first accepted issuer (the top-level <c>issuer</c> when set).</summary>
        public static KeySourceSettings FromOptions(TokenValidationOptions o) => KeySourceSettings.FromOptions(o, o.EffectiveIssuers[0]);

        /// <summary>The key source of one accepted issuer, with the route's fetch settings.</summary>
        public static KeySourceSettings FromOptions(TokenValidationOptions o, IssuerOptions issuer)
        {
            var kind = issuer.StaticJwks is not null ? KeySourceKind.Static
                : issuer.JwksUri is not null ? KeySourceKind.JwksUri
                : KeySourceKind.Discovery;
            return new KeySourceSettings
            {
                Kind = kind,
                Issuer = issuer.Issuer,
                Url = kind switch
                {
                    KeySourceKind.Discovery => issuer.DiscoveryUrl,
                    KeySourceKind.JwksUri => issuer.JwksUri,
                    _ => null,
                },
                StaticJwks = issuer.StaticJwks,
                CaFile = o.JwksCaFile,
                AllowInsecureHttp = o.AllowInsecureHttp,
                RefreshInterval = TimeSpan.FromSeconds(o.JwksRefreshSeconds),
                RefetchCooldown = TimeSpan.FromSeconds(o.JwksRefetchCooldownSeconds),
                StaleLimit = TimeSpan.FromSeconds(o.JwksStaleSeconds),
                FetchTimeout = TimeSpan.FromMilliseconds(o.JwksFetchTimeoutMs),
            };
        }
    }
}
