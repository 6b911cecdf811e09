using System.Diagnostics;
using System.Text;

namespace GitLabCiAuth.TestSupport;

/// <summary>What a finished run of the binary printed.</summary>
public sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// One run of the published binary as a child process, with stdout and stderr captured separately and every
/// wait bounded. Disposing kills a process that is still running.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    /// <summary>Bound for anything the binary should do "at once" (start listening, parse a bad flag, dump).</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _pumps;

    private HostProcess(Process process, string[] args)
    {
        _process = process;
        Args = args;
        _pumps = Task.WhenAll(Pump(process.StandardOutput, _stdout), Pump(process.StandardError, _stderr));
    }

    public string[] Args { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Starts the binary with <paramref name="args"/> (no waiting).</summary>
    public static async Task<HostProcess> StartAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(await HostBinary.GetPathAsync())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the host binary");
        return new HostProcess(p, args);
    }

    /// <summary>Runs the binary to completion (bounded) and returns its exit code and output.</summary>
    public static async Task<RunResult> RunAsync(params string[] args)
    {
        await using var p = await StartAsync(args);
        p._process.StandardInput.Close();
        int code = await p.WaitForExitAsync(Bound);
        return new RunResult(code, p.Stdout, p.Stderr);
    }

    /// <summary>Starts a server and waits (bounded) until it accepts connections on <paramref name="socketPath"/>.</summary>
    public static async Task<HostProcess> ServeAsync(string socketPath, params string[] args)
    {
        var p = await StartAsync(args);
        try
        {
            await p.WaitUntilListeningAsync(socketPath);
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until something accepts connections on <paramref name="socketPath"/>; fails if the process exits first.</summary>
    public async Task WaitUntilListeningAsync(string socketPath)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!Posix.IsListening(socketPath))
        {
            if (_process.HasExited)
            {
                await _pumps.WaitAsync(Bound);
                throw new InvalidOperationException($"the host exited ({_process.ExitCode}) before listening on {socketPath}; args: {string.Join(' ', Args)}\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the host did not listen on {socketPath} within {Bound}; stderr:\n{Stderr}");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Waits until connections to <paramref name="socketPath"/> reach this process (another server may listen there
    /// first: a reload); fails if the process exits first.
    /// </summary>
    public async Task WaitUntilOwnsAsync(string socketPath)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (Posix.ListenerPid(socketPath) != Pid)
        {
            if (_process.HasExited)
            {
                await _pumps.WaitAsync(Bound);
                throw new InvalidOperationException($"the host exited ({_process.ExitCode}) before owning {socketPath}; args: {string.Join(' ', Args)}\nstderr:\n{Stderr}");
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"connections to {socketPath} did not reach pid {Pid} within {Bound} (they reach {Posix.ListenerPid(socketPath)}); stderr:\n{Stderr}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits (bounded) until stderr contains <paramref name="text"/>.</summary>
    public async Task WaitForStderrAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Bound);
        while (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"stderr never contained '{text}'; stderr:\n{Stderr}");
            if (_process.HasExited)
            {
                await _pumps.WaitAsync(Bound);
                if (Stderr.Contains(text, StringComparison.Ordinal)) return;
                throw new InvalidOperationException($"the host exited ({_process.ExitCode}) before writing '{text}'; stderr:\n{Stderr}");
            }
            await Task.Delay(20);
        }
    }

    public void Signal(int signal) => Posix.Signal(_process.Id, signal);

    /// <summary>Waits for the process to exit (and its output to be read); throws if it does not within <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the host (pid {Pid}, args: {string.Join(' ', Args)}) did not exit within {timeout}; stderr:\n{Stderr}");
        }
        await _pumps.WaitAsync(Bound);
        return _process.ExitCode;
    }

    private static async Task Pump(StreamReader reader, StringBuilder sink)
    {
        var buf = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buf)) > 0)
        {
            lock (sink) sink.Append(buf, 0, n);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(Bound);
            }
            await _pumps.WaitAsync(Bound);
        }
        catch (Exception)
        {
            // best effort: a test failure is reported by the test itself
        }
        finally
        {
            _process.Dispose();
        }
    }
}
