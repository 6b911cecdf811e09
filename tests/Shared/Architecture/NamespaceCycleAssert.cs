using System.Reflection;
using Xunit;

namespace Shared.Architecture;

public static class NamespaceCycleAssert
{
    /// <summary>Fails with every loop found between the namespaces of <paramref name="assembly"/> and the edges of each.</summary>
    public static void NoCycles(Assembly assembly, Func<Type, bool>? ignore = null)
    {
        var graph = NamespaceGraph.Build(assembly, ignore);
        var cycles = NamespaceGraph.Cycles(graph);
        Assert.True(cycles.Count == 0,
            $"namespace cycles in {assembly.GetName().Name}:\n  " + string.Join("\n  ", cycles) + "\n\nedges:\n  " +
            string.Join("\n  ", graph.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} -> {string.Join(", ", kv.Value)}")));
    }

    /// <summary>The detector itself: the probe's two namespaces use each other only in method bodies.</summary>
    public static void DetectsTheProbe()
    {
        var graph = NamespaceGraph.Build(typeof(NamespaceCycleAssert).Assembly);
        var cycles = NamespaceGraph.Cycles(graph);
        Assert.Contains(cycles, c => c.Contains("Shared.Architecture.Probe.Upper") && c.Contains("Shared.Architecture.Probe.Lower"));
    }
}
