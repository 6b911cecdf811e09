using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace GitLabCiAuth.Keys;

/// <summary>
/// What the direct OpenSSL paths (<see cref="OpenSslRs256"/>, <see cref="OpenSslSha256"/>) share: the library .NET
/// itself loads on OpenSSL 3, the check that it is that library, and clearing the thread's error queue after a
/// refused or failed call, so that .NET's next OpenSSL call does not see stale errors.
/// </summary>
internal static partial class OpenSsl
{
    public const string LibCrypto = "libcrypto.so.3";

    /// <summary>True when .NET runs on OpenSSL 3 here: keys .NET imported and the functions called are from one library.</summary>
    public static bool DotNetUsesVersion3 => OperatingSystem.IsLinux() && SafeEvpPKeyHandle.OpenSslVersion >> 28 == 3;

    [LibraryImport(LibCrypto, EntryPoint = "ERR_clear_error")] public static partial void ClearErrors();
}
