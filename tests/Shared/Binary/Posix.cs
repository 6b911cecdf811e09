using System.Net.Sockets;
using System.Runtime.InteropServices;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")] // the binary under test is linux-x64 only

namespace GitLabCiAuth.TestSupport;

public static class Posix
{
    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    public static void Signal(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Open file descriptors of a process (entries of /proc/PID/fd).</summary>
    public static int OpenFds(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

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

    /// <summary>
    /// The pid of the process whose listener a connection to <paramref name="path"/> reaches (SO_PEERCRED), or null
    /// when nothing accepts there: which server owns a socket path that two of them bound.
    /// </summary>
    public static int? ListenerPid(string path)
    {
        const int SOL_SOCKET = 1, SO_PEERCRED = 17;
        if (!File.Exists(path)) return null;
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            return null;
        }
        var cred = new byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        s.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, cred);
        return BitConverter.ToInt32(cred, 0);
    }

    /// <summary>
    /// Leaves a stale socket file at <paramref name="path"/>, as a crashed server does: a bound Unix socket that
    /// nobody listens on any more. Done with libc directly, because .NET unlinks the file when its socket closes.
    /// </summary>
    public static void CreateStaleSocket(string path)
    {
        const int AF_UNIX = 1, SOCK_STREAM = 1;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) throw new ArgumentException("socket path too long", nameof(path));
        var addr = new byte[110]; // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
        BitConverter.GetBytes((ushort)AF_UNIX).CopyTo(addr, 0);
        bytes.CopyTo(addr, 2);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) throw new InvalidOperationException($"socket() failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (bind(fd, addr, addr.Length) != 0)
                throw new InvalidOperationException($"bind({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            close(fd);
        }
        if (!File.Exists(path)) throw new InvalidOperationException($"no socket file at {path} after bind");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    private static extern int bind(int fd, byte[] addr, int addrlen);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
