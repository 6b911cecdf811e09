using GitLabCiAuth.Plugin;
using Shared.Architecture;

namespace GitLabCiAuth.Tests;

/// <summary>
/// GitLabCiAuth's namespaces form layers: Claims ← Policy, Identity; Keys ← Tokens ← Plugin. Tokens and Keys read
/// their defaults and ranges from the config's field declarations (<see cref="GitLabCiAuthConfig.Fields"/>, generated,
/// and <see cref="GitLabCiAuthSchema"/>), which sit in Plugin but use nothing of it: those uses are not counted.
/// </summary>
public class NamespaceCycleTests
{
    [Fact]
    public void TheDetectorSeesALoopMadeInMethodBodies() => NamespaceCycleAssert.DetectsTheProbe();

    [Fact]
    public void GitLabCiAuthHasNoNamespaceCycle() =>
        NamespaceCycleAssert.NoCycles(typeof(GitLabCiAuthPlugin).Assembly, ignore: t => t == typeof(GitLabCiAuthConfig.Fields) || t == typeof(GitLabCiAuthSchema));
}
