using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace GitLabCiAuth.Keys;

/// <summary>A fetch failed, for <see cref="Cause"/>; the message is safe to log (no secrets).</summary>
public sealed class JwksFetchException : Exception
{
    public JwksFetchException(KeyFetchCause cause, string message, Exception? inner = null) : base(message, inner) => Cause = cause;

    public KeyFetchCause Cause { get; }
}

/// <summary>
/// Fetches the JWKS bytes for one source: optional OIDC discovery, then the key set. One fetch (discovery
/// + keys) is bounded by <see cref="KeySourceSettings.FetchTimeout"/> (wall clock). No redirects are followed,
/// bodies are read with a size limit, the discovered <c>jwks_uri</c> must be https (unless http is allowed)
/// and on the issuer's host and port, and the discovery document's <c>issuer</c> must equal the configured one.
/// An optional CA bundle is trusted in addition to the system roots (chain built with CustomTrustStore).
/// </summary>
internal sealed class JwksHttpFetcher : IDisposable
{
    private readonly KeySourceSettings _settings;
    private readonly HttpClient _client;
    private readonly X509Certificate2Collection? _extraRoots;

    public JwksHttpFetcher(KeySourceSettings settings)
    {
        _settings = settings;
        if (settings.CaFile is not null)
        {
            _extraRoots = new X509Certificate2Collection();
            try
            {
                _extraRoots.ImportFromPemFile(settings.CaFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                throw new TokenOptionsException($"jwks_ca_file: cannot read the CA bundle ({e.GetType().Name})");
            }
            if (_extraRoots.Count == 0)
                throw new TokenOptionsException("jwks_ca_file: the file holds no PEM certificate");
        }

        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = settings.FetchTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            MaxConnectionsPerServer = 2,
            MaxResponseHeadersLength = 32, // KiB
            MaxResponseDrainSize = 0,
        };
        if (_extraRoots is not null)
            handler.SslOptions.RemoteCertificateValidationCallback = ValidateWithExtraRoots;
        _client = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("gitlab-ci-auth", "1.0"));
    }

    /// <summary>Performs one bounded fetch and returns the raw key-set bytes. Throws <see cref="JwksFetchException"/>.</summary>
    public async Task<byte[]> FetchAsync()
    {
        using var timeout = new CancellationTokenSource(_settings.FetchTimeout);
        try
        {
            var jwksUri = _settings.Kind == KeySourceKind.Discovery
                ? await DiscoverAsync(timeout.Token).ConfigureAwait(false)
                : new Uri(_settings.Url!, UriKind.Absolute);
            return await GetBodyAsync(jwksUri, "key set", timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (timeout.IsCancellationRequested)
        {
            throw new JwksFetchException(KeyFetchCause.Timeout, $"timed out after {(int)_settings.FetchTimeout.TotalMilliseconds} ms", e);
        }
        catch (HttpRequestException e)
        {
            throw Classify(e);
        }
        catch (IOException e)
        {
            throw new JwksFetchException(KeyFetchCause.Connection, "the connection failed while reading the response" + SocketDetail(e), e);
        }
        catch (ObjectDisposedException e)
        {
            throw new JwksFetchException(KeyFetchCause.Other, "the fetch was stopped", e);
        }
    }

    /// <summary>What an HttpClient failure means to an operator: connection refused, a TLS error and why, ...</summary>
    internal static JwksFetchException Classify(HttpRequestException e)
    {
        var socket = Inner<System.Net.Sockets.SocketException>(e);
        return e.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => new(KeyFetchCause.NameResolution, "the host name did not resolve" + (socket is null ? "" : $" ({socket.SocketErrorCode})"), e),
            HttpRequestError.SecureConnectionError => new(KeyFetchCause.Tls, "TLS error: " + (Inner<System.Security.Authentication.AuthenticationException>(e)?.Message ?? e.Message), e),
            HttpRequestError.ConnectionError when socket?.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused =>
                new(KeyFetchCause.ConnectionRefused, "connection refused", e),
            HttpRequestError.ConnectionError when socket?.SocketErrorCode == System.Net.Sockets.SocketError.TimedOut =>
                new(KeyFetchCause.Timeout, "the connection timed out", e),
            HttpRequestError.ConnectionError => new(KeyFetchCause.Connection, "the connection failed" + SocketDetail(e), e),
            HttpRequestError.ResponseEnded => new(KeyFetchCause.Connection, "the connection closed before a complete response" + SocketDetail(e), e),
            HttpRequestError.InvalidResponse => new(KeyFetchCause.Other, "not a valid HTTP response", e),
            HttpRequestError.ProxyTunnelError => new(KeyFetchCause.Connection, "the proxy tunnel failed", e),
            _ when socket is not null || Inner<IOException>(e) is not null => new(KeyFetchCause.Connection, "the connection failed" + SocketDetail(e), e),
            var other => new(KeyFetchCause.Other, $"request failed ({other})", e),
        };
    }

    private static string SocketDetail(Exception e) => Inner<System.Net.Sockets.SocketException>(e)?.SocketErrorCode switch
    {
        null => "",
        System.Net.Sockets.SocketError.ConnectionReset => ": connection reset",
        System.Net.Sockets.SocketError.HostUnreachable => ": host unreachable",
        System.Net.Sockets.SocketError.NetworkUnreachable => ": network unreachable",
        var code => $": {code}",
    };

    private static T? Inner<T>(Exception e) where T : Exception
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is T t) return t;
        return null;
    }

    private async Task<Uri> DiscoverAsync(CancellationToken ct)
    {
        var body = await GetBodyAsync(new Uri(_settings.Url!, UriKind.Absolute), "discovery document", ct).ConfigureAwait(false);
        string? issuer, jwksUri;
        try
        {
            using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new JwksFetchException(KeyFetchCause.InvalidJson, "the discovery document is not a JSON object");
            issuer = root.TryGetProperty("issuer", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
            jwksUri = root.TryGetProperty("jwks_uri", out var j) && j.ValueKind == JsonValueKind.String ? j.GetString() : null;
        }
        catch (JsonException)
        {
            throw new JwksFetchException(KeyFetchCause.InvalidJson, "the discovery document is not valid JSON");
        }
        if (!string.Equals(issuer, _settings.Issuer, StringComparison.Ordinal))
            throw new JwksFetchException(KeyFetchCause.Discovery, $"the discovery document's issuer '{JwksParser.Trim(issuer)}' is not the configured issuer");
        if (jwksUri is null) throw new JwksFetchException(KeyFetchCause.Discovery, "the discovery document has no jwks_uri");
        return CheckDiscoveredJwksUri(jwksUri, _settings.Issuer, _settings.AllowInsecureHttp);
    }

    /// <summary>The discovered jwks_uri must be absolute, https (or http when allowed), and on the issuer's host and port.</summary>
    internal static Uri CheckDiscoveredJwksUri(string jwksUri, string issuer, bool allowInsecureHttp)
    {
        if (!Uri.TryCreate(jwksUri, UriKind.Absolute, out var u))
            throw new JwksFetchException(KeyFetchCause.Discovery, "the discovered jwks_uri is not an absolute URL");
        if (u.Scheme != Uri.UriSchemeHttps && !(allowInsecureHttp && u.Scheme == Uri.UriSchemeHttp))
            throw new JwksFetchException(KeyFetchCause.Discovery, $"the discovered jwks_uri '{JwksParser.Trim(jwksUri)}' is not https");
        if (!string.IsNullOrEmpty(u.UserInfo))
            throw new JwksFetchException(KeyFetchCause.Discovery, "the discovered jwks_uri has user info");
        var iss = new Uri(issuer, UriKind.Absolute);
        if (!string.Equals(u.IdnHost, iss.IdnHost, StringComparison.OrdinalIgnoreCase) || u.Port != iss.Port)
            throw new JwksFetchException(KeyFetchCause.Discovery, $"the discovered jwks_uri '{JwksParser.Trim(jwksUri)}' is not on the issuer's host");
        return u;
    }

    private async Task<byte[]> GetBodyAsync(Uri uri, string what, CancellationToken ct)
    {
        if (uri.Scheme != Uri.UriSchemeHttps && !(_settings.AllowInsecureHttp && uri.Scheme == Uri.UriSchemeHttp))
            throw new JwksFetchException(KeyFetchCause.Other, $"refusing non-https {what} URL");
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new JwksFetchException(KeyFetchCause.HttpStatus, $"{what}: HTTP {(int)response.StatusCode} from {uri.GetLeftPart(UriPartial.Path)}");
        var limit = _settings.MaxBodyBytes;
        if (response.Content.Headers.ContentLength is long len && len > limit)
            throw new JwksFetchException(KeyFetchCause.BodyTooLarge, $"{what}: body of {len} bytes exceeds the {limit}-byte limit");

        var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[Math.Min(limit + 1, (int)Math.Max(4096, response.Content.Headers.ContentLength ?? 16384) + 1)];
            var total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length > limit)
                        throw new JwksFetchException(KeyFetchCause.BodyTooLarge, $"{what}: body exceeds the {limit}-byte limit");
                    Array.Resize(ref buffer, Math.Min(limit + 1, buffer.Length * 2));
                }
                var n = await stream.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
            }
            if (total > limit) throw new JwksFetchException(KeyFetchCause.BodyTooLarge, $"{what}: body exceeds the {limit}-byte limit");
            return buffer.AsSpan(0, total).ToArray();
        }
    }

    private bool ValidateWithExtraRoots(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None) return true;
        // Only chain trust may be rescued by the extra CA; a name mismatch or missing certificate never.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots!);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
        if (chain is not null)
        {
            custom.ChainPolicy.ExtraStore.AddRange(chain.ChainPolicy.ExtraStore);
            foreach (var element in chain.ChainElements) custom.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        try
        {
            return custom.Build(leaf);
        }
        finally
        {
            if (!ReferenceEquals(leaf, certificate)) leaf.Dispose();
        }
    }

    public void Dispose() => _client.Dispose();
}
