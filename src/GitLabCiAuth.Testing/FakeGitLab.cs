using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace GitLabCiAuth.Testing;

/// <summary>Fault the fake issuer injects into its answers.</summary>
public enum FakeGitLabFault
{
    None,
    /// <summary>Every connection is accepted and immediately reset (nothing is read or answered).</summary>
    Down,
    /// <summary>HTTP 500.</summary>
    Status500,
    /// <summary>HTTP 200 with a body that is not JSON.</summary>
    Garbage,
    /// <summary>Reads the request and never answers (until the fake is disposed).</summary>
    Hang,
    /// <summary>Answers normally after <see cref="FakeGitLab.SlowDelay"/>.</summary>
    Slow,
    /// <summary>HTTP 200 streaming a never-ending-looking body (bounded at 16 MiB), no Content-Length.</summary>
    HugeBody,
    /// <summary>The discovery document's jwks_uri points at another host (<c>localhost</c> instead of 127.0.0.1, same port).</summary>
    DiscoveryPointsElsewhere,
}

public sealed class FakeGitLabOptions
{
    /// <summary>Serve HTTPS with a certificate from a fresh private CA (see <see cref="FakeGitLab.CaCertificatePem"/>).</summary>
    public bool UseTls { get; init; }
}

/// <summary>
/// A tiny hand-written HTTP/1.1 GitLab stand-in on 127.0.0.1 (ephemeral port): serves
/// <c>/.well-known/openid-configuration</c> and <c>/oauth/discovery/keys</c> like GitLab (JWKS with the instance's
/// user-OIDC key and the CI key, <c>Cache-Control: max-age=86400, public, must-revalidate</c>). One request per
/// connection. Controls: <see cref="Rotate"/>, <see cref="Fault"/> (optionally only on <see cref="FaultPath"/>),
/// request counters. All loops are bounded and stop on dispose.
/// </summary>
public sealed class FakeGitLab : IDisposable, IAsyncDisposable
{
    public const string DiscoveryPath = "/.well-known/openid-configuration";
    public const string KeysPath = "/oauth/discovery/keys";

    private const int MaxRequestHeadBytes = 16 * 1024;
    private const int HugeBodyBytes = 16 * 1024 * 1024;

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly Lock _lock = new();
    private readonly X509Certificate2? _serverCert;
    private readonly X509Certificate2? _caCert;
    private readonly List<string> _extraJwks = [];
    private readonly Task _acceptLoop;
    private MinterKey _ciKey;
    private volatile FakeGitLabFault _fault;
    private volatile string? _faultPath;
    private long _slowDelayTicks = TimeSpan.FromMilliseconds(500).Ticks;

    private FakeGitLab(FakeGitLabOptions options)
    {
        UserOidcKey = MinterKey.CreateRsa(2048);
        _ciKey = MinterKey.CreateRsa(2048);
        if (options.UseTls) (_caCert, _serverCert) = CreateCertificates();
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(backlog: 64);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        Issuer = $"{(options.UseTls ? "https" : "http")}://127.0.0.1:{Port}";
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public static FakeGitLab Start(FakeGitLabOptions? options = null) => new(options ?? new FakeGitLabOptions());

    public int Port { get; }

    /// <summary><c>http://127.0.0.1:{port}</c> (or https), no trailing slash.</summary>
    public string Issuer { get; }

    public string DiscoveryUrl => Issuer + DiscoveryPath;
    public string JwksUrl => Issuer + KeysPath;

    /// <summary>The current CI ID-token signing key (RSA-2048, kid = RFC 7638 thumbprint).</summary>
    public MinterKey CiKey
    {
        get { lock (_lock) return _ciKey; }
    }

    /// <summary>The instance's OpenID Connect provider key (signs "Sign in with GitLab" ID tokens); also in the JWKS.</summary>
    public MinterKey UserOidcKey { get; }

    /// <summary>PEM of the private CA that issued the server certificate (TLS mode), else null.</summary>
    public string? CaCertificatePem => _caCert?.ExportCertificatePem();

    public FakeGitLabFault Fault
    {
        get => _fault;
        set => _fault = value;
    }

    /// <summary>When set, the fault applies only to this path (e.g. <see cref="KeysPath"/>).</summary>
    public string? FaultPath
    {
        get => _faultPath;
        set => _faultPath = value;
    }

    public TimeSpan SlowDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _slowDelayTicks));
        set => Interlocked.Exchange(ref _slowDelayTicks, value.Ticks);
    }

    /// <summary>Sets the fault (and optionally the path it applies to); <see cref="FakeGitLabFault.None"/> heals.</summary>
    public void SetFault(FakeGitLabFault fault, string? onlyPath = null)
    {
        _faultPath = onlyPath;
        _fault = fault;
    }

    /// <summary>Slow mode with this delay.</summary>
    public void Slow(TimeSpan delay)
    {
        SlowDelay = delay;
        SetFault(FakeGitLabFault.Slow);
    }

    /// <summary>Replaces the CI key with a new RSA-2048 key (old one removed at once, no overlap, like GitLab). Returns the new key.</summary>
    public MinterKey Rotate()
    {
        var k = MinterKey.CreateRsa(2048);
        lock (_lock) _ciKey = k;
        return k;
    }

    /// <summary>Raw JWK JSON objects appended to the served key set (for EC keys, duplicates, junk entries...).</summary>
    public void AddJwksEntry(string jwkJson)
    {
        lock (_lock) _extraJwks.Add(jwkJson);
    }

    public void ClearJwksEntries()
    {
        lock (_lock) _extraJwks.Clear();
    }

    /// <summary>Requests received for a path (query ignored), counted when the request line was read.</summary>
    public int RequestCount(string path) => _counts.TryGetValue(path, out var n) ? n : 0;

    public int DiscoveryRequests => RequestCount(DiscoveryPath);
    public int KeysRequests => RequestCount(KeysPath);

    /// <summary>All connections accepted (including those reset in Down mode).</summary>
    public int Connections => RequestCount("*connections");

    public void ResetCounters() => _counts.Clear();

    /// <summary>The JWKS document as currently served.</summary>
    public string JwksJson()
    {
        MinterKey ci;
        string[] extra;
        lock (_lock)
        {
            ci = _ciKey;
            extra = _extraJwks.ToArray();
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("keys");
            UserOidcKey.WritePublicJwk(w);
            ci.WritePublicJwk(w);
            foreach (var e in extra) w.WriteRawValue(e, skipInputValidation: true);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The discovery document as currently served.</summary>
    public string DiscoveryJson(bool pointElsewhere = false)
    {
        var jwksUri = pointElsewhere ? Issuer.Replace("127.0.0.1", "localhost", StringComparison.Ordinal) + KeysPath : JwksUrl;
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("issuer", Issuer);
            w.WriteString("authorization_endpoint", Issuer + "/oauth/authorize");
            w.WriteString("token_endpoint", Issuer + "/oauth/token");
            w.WriteString("revocation_endpoint", Issuer + "/oauth/revoke");
            w.WriteString("introspection_endpoint", Issuer + "/oauth/introspect");
            w.WriteString("userinfo_endpoint", Issuer + "/oauth/userinfo");
            w.WriteString("jwks_uri", jwksUri);
            WriteArray(w, "scopes_supported", "api", "read_api", "read_user", "openid", "profile", "email");
            WriteArray(w, "response_types_supported", "code");
            WriteArray(w, "response_modes_supported", "query", "fragment", "form_post");
            WriteArray(w, "grant_types_supported", "authorization_code", "password", "client_credentials", "refresh_token");
            WriteArray(w, "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post");
            WriteArray(w, "subject_types_supported", "public");
            WriteArray(w, "id_token_signing_alg_values_supported", "RS256");
            WriteArray(w, "claim_types_supported", "normal");
            WriteArray(w, "claims_supported", "iss", "sub", "aud", "exp", "iat", "sub_legacy", "name", "nickname", "preferred_username", "email", "email_verified", "website", "profile", "picture", "groups", "groups_direct");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteArray(Utf8JsonWriter w, string name, params string[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            Count("*connections");
            var t = Task.Run(() => HandleAsync(socket));
            _connections.TryAdd(t, 0);
            _ = t.ContinueWith(static (done, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(done, out _),
                _connections, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(Socket socket)
    {
        using var _ = socket;
        try
        {
            if (_fault == FakeGitLabFault.Down && _faultPath is null)
            {
                socket.LingerState = new LingerOption(true, 0); // RST
                socket.Close();
                return;
            }

            Stream stream = new NetworkStream(socket, ownsSocket: false);
            await using var __ = stream.ConfigureAwait(false);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            if (_serverCert is not null)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _serverCert }, timeout.Token).ConfigureAwait(false);
                stream = ssl;
            }

            var path = await ReadRequestPathAsync(stream, timeout.Token).ConfigureAwait(false);
            if (path is null) return;
            Count(path);

            var fault = _fault;
            var faultPath = _faultPath;
            if (faultPath is not null && faultPath != path) fault = FakeGitLabFault.None;

            switch (fault)
            {
                case FakeGitLabFault.Down:
                    socket.LingerState = new LingerOption(true, 0);
                    return;
                case FakeGitLabFault.Hang:
                    await Task.Delay(Timeout.Infinite, _stop.Token).ConfigureAwait(false);
                    return;
                case FakeGitLabFault.Slow:
                    await Task.Delay(SlowDelay, _stop.Token).ConfigureAwait(false);
                    break;
                case FakeGitLabFault.Status500:
                    await WriteResponseAsync(stream, 500, "Internal Server Error", "text/plain", "500 Internal Server Error\n"u8.ToArray(), null).ConfigureAwait(false);
                    return;
                case FakeGitLabFault.Garbage:
                    await WriteResponseAsync(stream, 200, "OK", "application/json", "<html>this is { not json"u8.ToArray(), null).ConfigureAwait(false);
                    return;
                case FakeGitLabFault.HugeBody:
                    await WriteHugeBodyAsync(stream).ConfigureAwait(false);
                    return;
            }

            if (path == DiscoveryPath)
            {
                var body = Encoding.UTF8.GetBytes(DiscoveryJson(fault == FakeGitLabFault.DiscoveryPointsElsewhere));
                await WriteResponseAsync(stream, 200, "OK", "application/json; charset=utf-8", body, null).ConfigureAwait(false);
            }
            else if (path == KeysPath)
            {
                var body = Encoding.UTF8.GetBytes(JwksJson());
                await WriteResponseAsync(stream, 200, "OK", "application/json; charset=utf-8", body,
                    "Cache-Control: max-age=86400, public, must-revalidate\r\n").ConfigureAwait(false);
            }
            else
            {
                await WriteResponseAsync(stream, 404, "Not Found", "application/json", "{\"error\":\"404 Not Found\"}"u8.ToArray(), null).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
                                      or System.Security.Authentication.AuthenticationException)
        {
            // client went away, timed out, or the fake is stopping
        }
    }

    private static async Task<string?> ReadRequestPathAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[MaxRequestHeadBytes];
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false);
            if (n == 0) return null;
            total += n;
            if (buffer.AsSpan(0, total).IndexOf("\r\n\r\n"u8) >= 0) break;
        }
        var head = Encoding.ASCII.GetString(buffer, 0, total);
        var firstLine = head.Split("\r\n", 2)[0].Split(' ');
        if (firstLine.Length != 3 || firstLine[0] != "GET") return null;
        var target = firstLine[1];
        var q = target.IndexOf('?');
        return q >= 0 ? target[..q] : target;
    }

    private static async Task WriteResponseAsync(Stream stream, int status, string reason, string contentType, byte[] body, string? extraHeaders)
    {
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\n{extraHeaders}Connection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head)).ConfigureAwait(false);
        await stream.WriteAsync(body).ConfigureAwait(false);
        await stream.FlushAsync().ConfigureAwait(false);
    }

    private async Task WriteHugeBodyAsync(Stream stream)
    {
        await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"keys\":["u8.ToArray(), _stop.Token).ConfigureAwait(false);
        var chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("{\"kty\":\"oct\",\"k\":\"AAAA\"},", 2048)));
        for (var sent = 0; sent < HugeBodyBytes; sent += chunk.Length)
            await stream.WriteAsync(chunk, _stop.Token).ConfigureAwait(false);
    }

    private void Count(string path) => _counts.AddOrUpdate(path, 1, static (_, n) => n + 1);

    private static (X509Certificate2 Ca, X509Certificate2 Server) CreateCertificates()
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caReq = new CertificateRequest("CN=gitlab-ci-auth test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        var ca = caReq.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        using var serverKey = RSA.Create(2048);
        var req = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var leaf = req.Create(ca, now.AddMinutes(-5), now.AddDays(1), serial);
        var withKey = leaf.CopyWithPrivateKey(serverKey);
        return (ca, withKey);
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
        try
        {
            var pending = _connections.Keys.Append(_acceptLoop).ToArray();
            Task.WaitAll(pending, TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _serverCert?.Dispose();
        _caCert?.Dispose();
        _stop.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
