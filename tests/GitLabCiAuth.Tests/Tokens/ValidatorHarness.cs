using System.Collections.Concurrent;
using GitLabCiAuth.Keys;
using GitLabCiAuth.Testing;
using GitLabCiAuth.Tokens;

namespace GitLabCiAuth.Tests.Tokens;

/// <summary>A fake GitLab, a manual clock, a private key store and a minter, wired together.</summary>
internal sealed class ValidatorHarness : IDisposable
{
    public const string Audience = TokenMinter.DefaultAudience;

    private readonly List<GitLabTokenValidator> _validators = [];

    public ValidatorHarness(FakeGitLabOptions? options = null)
    {
        GitLab = FakeGitLab.Start(options);
        Time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        Store = new JwksKeyStore(Time, (level, message) => Logs.Enqueue($"{level}: {message}"));
        Minter = new TokenMinter(GitLab, Audience, Time);
    }

    public FakeGitLab GitLab { get; }
    public ManualTimeProvider Time { get; }
    public JwksKeyStore Store { get; }
    public TokenMinter Minter { get; }
    public ConcurrentQueue<string> Logs { get; } = new();

    public DateTimeOffset Now => Time.GetUtcNow();

    public TokenValidationOptions Options(Action<TokenValidationOptions>? configure = null)
    {
        var o = new TokenValidationOptions
        {
            Issuer = GitLab.Issuer,
            Audiences = [Audience],
            AllowInsecureHttp = true,
        };
        configure?.Invoke(o);
        return o;
    }

    /// <summary>Creates a validator and (by default) waits for its key source's first fetch.</summary>
    public async Task<GitLabTokenValidator> ValidatorAsync(Action<TokenValidationOptions>? configure = null, bool waitForKeys = true)
    {
        var v = new GitLabTokenValidator(Options(configure), Store, Time);
        _validators.Add(v);
        if (waitForKeys) await v.InitialKeyFetch.WaitAsync(TimeSpan.FromSeconds(30));
        return v;
    }

    public ValueTask<TokenResult> ValidateAsync(GitLabTokenValidator v, string token) =>
        v.ValidateAsync("Bearer " + token, Now);

    /// <summary>Moves the clock and waits until the background fetch it may have started is over.</summary>
    public async Task AdvanceAsync(TimeSpan by, GitLabTokenValidator v)
    {
        Time.Advance(by);
        await v.Keys.WhenIdleAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        foreach (var v in _validators) v.Dispose();
        Store.Dispose();
        GitLab.Dispose();
    }

}
