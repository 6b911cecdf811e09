using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Deployment.Tests.Infrastructure;

public sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// A command line run the way Kong runs its pluginserver commands: through <c>/bin/sh -c</c> (the start command
/// as <c>exec CMD</c>, ngx.pipe style; the query command through io.popen). stdout and stderr are captured
/// separately, every wait is bounded, and disposing kills a process that still runs.
/// </summary>
public sealed class ShellProcess : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new(), _stderr = new();
    private readonly Task _pumps;

    private ShellProcess(Process process, string command)
    {
        _process = process;
        Command = command;
        _pumps = Task.WhenAll(Pump(process.StandardOutput, _stdout), Pump(process.StandardError, _stderr));
    }

    public string Command { get; }
    public int Pid => _process.Id;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Starts <c>/bin/sh -c <paramref name="shellCommand"/></c> in a clean environment (Kong's nginx drops the inherited one).</summary>
    public static ShellProcess Start(string shellCommand)
    {
        var psi = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(shellCommand);
        // nginx removes inherited variables except TZ: the binary must not need HOME, PATH or DOTNET_*
        psi.Environment.Clear();
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start /bin/sh");
        p.StandardInput.Close();
        return new ShellProcess(p, shellCommand);
    }

    /// <summary>Runs the command to completion (bounded).</summary>
    public static async Task<RunResult> RunAsync(string shellCommand)
    {
        await using var p = Start(shellCommand);
        int code = await p.WaitForExitAsync(Bound);
        return new RunResult(code, p.Stdout, p.Stderr);
    }

    /// <summary>Waits (bounded) until something accepts connections on <paramref name="socketPath"/>; fails if the process exits first.</summary>
    public async Task WaitUntilListeningAsync(string socketPath)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!IsListening(socketPath))
        {
            if (_process.HasExited)
            {
                await _pumps.WaitAsync(Bound);
                throw new InvalidOperationException($"`{Command}` exited ({_process.ExitCode}) before listening on {socketPath}\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"`{Command}` did not listen on {socketPath} within {Bound}; stderr:\n{Stderr}");
            await Task.Delay(20);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"`{Command}` did not exit within {timeout}; stderr:\n{Stderr}");
        }
        await _pumps.WaitAsync(Bound);
        return _process.ExitCode;
    }

    /// <summary>True when something accepts connections on the Unix socket at <paramref name="path"/>.</summary>
    public static bool IsListening(string path)
    {
        if (!File.Exists(path)) return false;
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
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
            // best effort: the test reports its own failure
        }
        finally
        {
            _process.Dispose();
        }
    }
}
