using Kong.PluginServer.Server;
using Shared.Architecture;

namespace Kong.PluginServer.Tests;

/// <summary>The library's namespaces form layers: root (phases, scope, log) ← Pdk ← Plugins ← Io ← Protocol ← Server.</summary>
public class NamespaceCycleTests
{
    [Fact]
    public void TheDetectorSeesALoopMadeInMethodBodies() => NamespaceCycleAssert.DetectsTheProbe();

    [Fact]
    public void KongPluginServerHasNoNamespaceCycle() => NamespaceCycleAssert.NoCycles(typeof(KongPluginServer).Assembly);
}
