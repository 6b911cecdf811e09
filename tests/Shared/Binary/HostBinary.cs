using System.Diagnostics;

namespace GitLabCiAuth.TestSupport;

/// <summary>
/// The published NativeAOT binary under test. <c>GITLAB_CI_AUTH_BIN</c> names it (CI sets it after its own
/// publish); when the variable is unset, the first caller publishes it once for the whole test run
/// (<c>dotnet publish src/GitLabCiAuth.Host -c Release -r linux-x64 -o &lt;repo&gt;/artifacts/bin</c>), so a plain
/// <c>dotnet test</c> works for a developer too.
/// </summary>
public static class HostBinary
{
    public const string EnvironmentVariable = "GITLAB_CI_AUTH_BIN";
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(10);
    private static readonly Lazy<Task<string>> s_path = new(ResolveAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The absolute path of the executable (publishing it first if needed).</summary>
    public static Task<string> GetPathAsync() => s_path.Value;

    private static async Task<string> ResolveAsync()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            var full = Path.GetFullPath(fromEnv);
            if (!File.Exists(full))
                throw new FileNotFoundException($"{EnvironmentVariable}={fromEnv}: no such file (publish the host first, or unset the variable to let the tests publish it)", full);
            return full;
        }

        var root = FindRepoRoot();
        var output = Path.Combine(root, "artifacts", "bin");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet)) dotnet = "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = root,
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
            throw new InvalidOperationException($"dotnet publish of the host failed (exit {p.ExitCode}):\n{Tail(log, 4000)}");
        var binary = Path.Combine(output, "gitlab-ci-auth");
        if (!File.Exists(binary)) throw new FileNotFoundException($"dotnet publish succeeded but {binary} is missing:\n{Tail(log, 4000)}", binary);
        return binary;
    }

    /// <summary>Walks up from the test assembly to the directory holding Plugin.sln.</summary>
    public static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Plugin.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"Plugin.sln not found above {AppContext.BaseDirectory}; set {EnvironmentVariable}");
    }

    private static string Tail(string s, int max) => s.Length <= max ? s : s[^max..];
}
