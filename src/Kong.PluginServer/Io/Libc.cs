using System.Runtime.InteropServices;

namespace Kong.PluginServer.Io;

/// <summary>
/// The Linux calls the event loop makes (glibc; the values are the same on x86-64 and arm64). Source-generated
/// marshalling, so NativeAOT needs no runtime stubs.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    public const uint EPOLLIN = 0x001, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010;
    public const int MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
    public const int SHUT_WR = 1, SHUT_RDWR = 2;
    public const int SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
    public const int EINTR = 4, EAGAIN = 11, EMFILE = 24, ENFILE = 23, ENOBUFS = 105, ENOMEM = 12, ECONNABORTED = 103;

    [LibraryImport(Lib, SetLastError = true)] public static partial int epoll_create1(int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);
    [LibraryImport(Lib, SetLastError = true)] public static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recv(int fd, byte* buf, nuint len, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint send(int fd, byte* buf, nuint len, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int accept4(int fd, void* addr, void* addrlen, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int shutdown(int fd, int how);
    [LibraryImport(Lib, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int eventfd(uint initval, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint read(int fd, byte* buf, nuint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint write(int fd, byte* buf, nuint count);

    /// <summary>struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16 bytes).</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>epoll_ctl with an event of <paramref name="events"/> and <paramref name="data"/>; the errno on failure, 0 on success.</summary>
    public static int Control(int epfd, int op, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + EventDataOffset) = data;
        return epoll_ctl(epfd, op, fd, ev) == 0 ? 0 : Errno;
    }
}
