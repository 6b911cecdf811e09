using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Kong.PluginServer.Server;

/// <summary>What a path names on the file system: its device and inode, and whether it is a socket.</summary>
internal readonly record struct FileIdentity(uint DevMajor, uint DevMinor, ulong Inode, bool IsSocket, bool IsDirectory)
{
    public bool SameFile(FileIdentity other) => DevMajor == other.DevMajor && DevMinor == other.DevMinor && Inode == other.Inode;
}

/// <summary>
/// The socket file of one server. Kong's reload starts the new server while the old one still listens
/// (docs/protocol.md#server-lifecycle), so a starting server takes the path over whatever listens there,
/// and a stopping server removes the path only while it still names the file it bound itself.
/// </summary>
internal static partial class SocketFile
{
    /// <summary>sun_path holds 108 bytes, the terminating NUL included.</summary>
    public const int MaxPathBytes = 107;

    private static int s_binds;

    /// <summary>
    /// Binds and listens on <paramref name="path"/>, replacing a socket file that is there (stale, or live: a
    /// reload). The socket is bound under a temporary name in the same directory and renamed over the path:
    /// rename(2) replaces atomically, so a connecting Kong worker finds either the old server or the new one,
    /// never no socket at all. The file's identity is returned for <see cref="RemoveIfOwn"/>.
    /// </summary>
    public static Socket Bind(string path, UnixFileMode mode, int backlog, ServerLog log, out FileIdentity? bound)
    {
        if (Encoding.UTF8.GetByteCount(path) > MaxPathBytes)
            throw new IOException($"socket path {path} is longer than {MaxPathBytes} bytes");
        var existing = TryIdentify(path, out bool known);
        if (existing is { IsDirectory: true } || (!known && Directory.Exists(path))) throw new IOException($"{path} is a directory");
        if (existing is { IsSocket: false } || (!known && File.Exists(path) && !LooksLikeSocket(path)))
            throw new IOException($"{path} exists and is not a socket; refusing to replace it");
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir)) throw new IOException($"socket directory {dir} does not exist");
        bool replacing = File.Exists(path);
        bool live = replacing && IsLive(path);

        string temp = TemporaryName(full);
        if (File.Exists(temp)) File.Delete(temp); // left by a crashed process that had this pid
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            // .NET unlinks the name a socket was bound to when it closes: that is the temporary name, gone by then,
            // so closing never removes the path (which may belong to a newer server by then)
            s.Bind(new UnixDomainSocketEndPoint(temp));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, mode);
            s.Listen(backlog);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            s.Dispose();
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        bound = TryIdentify(full, out _);
        if (live) log.Notice($"took over {path} from the server listening there (a reload); that one finishes its own connections");
        else if (replacing) log.Info($"replaced the stale socket file {path}");
        return s;
    }

    /// <summary>
    /// Removes <paramref name="path"/> if it still names the file this server bound (<paramref name="bound"/>): after
    /// a takeover the path is the new server's and stays. Without an identity (no statx) the path is removed only when
    /// nothing answers on it. Returns true when another server owns the path now (a successor took it over).
    /// </summary>
    public static bool RemoveIfOwn(string path, FileIdentity? bound, ServerLog log)
    {
        var now = TryIdentify(path, out bool known);
        try
        {
            if (bound is { } mine && known)
            {
                if (now is null) return false;
                if (now.Value.SameFile(mine)) File.Delete(path);
                else
                {
                    log.Info($"{path} belongs to another server now; leaving it");
                    return true;
                }
            }
            else if (File.Exists(path) && LooksLikeSocket(path))
            {
                if (!IsLive(path)) File.Delete(path);
                else return true;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }

    /// <summary>A name next to <paramref name="fullPath"/>, unique to this process and bind, within sun_path's limit.</summary>
    private static string TemporaryName(string fullPath)
    {
        string dir = Path.GetDirectoryName(fullPath) ?? "/";
        int n = Interlocked.Increment(ref s_binds);
        string name = Path.Combine(dir, $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{n}.tmp");
        if (Encoding.UTF8.GetByteCount(name) <= MaxPathBytes) return name;
        name = Path.Combine(dir, $".{Environment.ProcessId:x}.{n:x}");
        if (Encoding.UTF8.GetByteCount(name) <= MaxPathBytes) return name;
        throw new IOException($"socket path {fullPath} leaves no room for the temporary name the server binds next to it; use a shorter path");
    }

    /// <summary>True when something accepts connections on <paramref name="path"/>.</summary>
    public static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { probe.Connect(new UnixDomainSocketEndPoint(path)); return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>Without statx: open(2) on a Unix socket fails (ENXIO) while a regular file opens.</summary>
    private static bool LooksLikeSocket(string path)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static int s_statx = 1; // 1 untried or working, 0 unavailable

    /// <summary>
    /// The identity of what <paramref name="path"/> names (not following a symlink), or null when nothing is there.
    /// <paramref name="known"/> is false when the platform cannot tell (no statx: glibc before 2.28, or not Linux).
    /// </summary>
    public static FileIdentity? TryIdentify(string path, out bool known)
    {
        known = false;
        if (!OperatingSystem.IsLinux() || Volatile.Read(ref s_statx) == 0) return null;
        try
        {
            var id = Statx(path, out int errno);
            known = id is not null || errno is ENOENT or ENOTDIR;
            return id;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            Volatile.Write(ref s_statx, 0);
            return null;
        }
    }

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_TYPE = 0x1, STATX_INO = 0x100;
    private const int ENOENT = 2, ENOTDIR = 20;
    private const int S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFDIR = 0x4000;

    // struct statx is the same on every Linux architecture: stx_mode at 28 (u16), stx_ino at 32 (u64),
    // stx_dev_major at 136 and stx_dev_minor at 140 (u32); 256 bytes in all
    private static unsafe FileIdentity? Statx(string path, out int errno)
    {
        byte* buf = stackalloc byte[256];
        errno = 0;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        int fmt = *(ushort*)(buf + 28) & S_IFMT;
        return new FileIdentity(*(uint*)(buf + 136), *(uint*)(buf + 140), *(ulong*)(buf + 32), fmt == S_IFSOCK, fmt == S_IFDIR);
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
