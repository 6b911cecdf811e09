using System.Diagnostics;

namespace Deployment.Tests.Infrastructure;

/// <summary>
/// The published NativeAOT binary `gitlab-ci-auth`: <c>$GITLAB_CI_AUTH_BIN</c> when set (CI publishes it first),
/// otherwise published once per test run into <c>&lt;repo&gt;/artifacts/bin</c> with the Dockerfile's own publish
/// command, so a plain <c>dotnet test</c> works too.
/// </summary>
public static class HostBinary
{
    public const string EnvironmentVariable = "GITLAB_CI_AUTH_BIN";
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(10);
    private static readonly Lazy<Task<string>> s_path = new(ResolveAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    public static Task<string> GetPathAsync() => s_path.Value;

    private static async Task<string> ResolveAsync()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            var full = Path.GetFullPath(fromEnv);
            return File.Exists(full)
                ? full
                : throw new FileNotFoundException($"{EnvironmentVariable}={fromEnv}: no such file (publish the host, or unset the variable)", full);
        }

        var output = Repo.File("artifacts", "bin");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet)) dotnet = "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "publish", Path.Combine("src", "GitLabCiAuth.Host"), "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo" })
            psi.ArgumentList.Add(a);
        // the test host's MSBuild environment must not leak into the nested build
        psi.Environment.Remove("MSBuildExtensionsPath");
        psi.Environment.Remove("MSBuildSDKsPath");
        psi.Environment.Remove("MSBUILD_EXE_PATH");

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet publish");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(PublishTimeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"dotnet publish of the host did not finish within {PublishTimeout}");
        }
        var log = await stdout + await stderr;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"dotnet publish of the host failed (exit {p.ExitCode}):\n{(log.Length > 4000 ? log[^4000..] : log)}");
        var binary = Path.Combine(output, "gitlab-ci-auth");
        return File.Exists(binary) ? binary : throw new FileNotFoundException($"dotnet publish succeeded but {binary} is missing", binary);
    }
}
