using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Bench;

/// <summary>
/// BenchmarkDotNet entry point. Runs in-process by default (no generated project is built, so it does not race
/// other builds in the tree); pass --out-of-process for BDN's isolated child process. Quick mode: --job short (or dry).
///   dotnet run -c Release --project bench/Bench -- --filter '*'
///   dotnet run -c Release --project bench/Bench -- --filter '*Codec*' --job short
///   dotnet run -c Release --project bench/Bench -- --cache-footprint 10000   (heap retained per cached token)
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        int fp = Array.IndexOf(args, "--cache-footprint");
        if (fp >= 0) return CacheFootprint.Run(fp + 1 < args.Length ? int.Parse(args[fp + 1]) : 10_000);
        bool outOfProcess = args.Contains("--out-of-process");
        args = args.Where(a => a != "--out-of-process").ToArray();
        var config = DefaultConfig.Instance.AddDiagnoser(MemoryDiagnoser.Default);
        if (!outOfProcess && !args.Contains("--job") && !args.Contains("-j"))
            config = config.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance));
        else if (!outOfProcess)
            config = config.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).AsMutator());
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
