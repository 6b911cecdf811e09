// Two namespaces that use each other only inside method bodies: the graph must see the loop (NamespaceGraphTests).
namespace Shared.Architecture.Probe.Upper
{
    internal static class UsesLower
    {
        public static int Call() => Lower.UsesUpper.Value + 1;
    }
}

namespace Shared.Architecture.Probe.Lower
{
    internal static class UsesUpper
    {
        public static int Value => 1;
        public static object Back() => new System.Func<int>(Upper.UsesLower.Call);
    }
}
