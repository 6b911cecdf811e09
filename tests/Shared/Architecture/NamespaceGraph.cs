using System.Reflection;
using System.Reflection.Emit;

namespace Shared.Architecture;

/// <summary>
/// Which namespaces of an assembly use which others: every type's base type, interfaces, fields, properties,
/// events, method signatures, locals, attributes and every type or member named in a method body's IL
/// (calls, field accesses, allocations, casts, typeof). Compiler-generated types (lambdas, async state machines)
/// count for the namespace they are nested in. Only namespaces of the assembly itself are kept.
/// </summary>
public static class NamespaceGraph
{
    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> s_opCodes = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>namespace → the other namespaces of the assembly it uses. A use of a type <paramref name="ignore"/> accepts
    /// (or of a type nested in one) makes no edge. The global namespace (compiler-generated helpers) is left out.</summary>
    public static Dictionary<string, SortedSet<string>> Build(Assembly assembly, Func<Type, bool>? ignore = null)
    {
        var types = assembly.GetTypes();
        var own = types.Select(NamespaceOf).Where(n => n.Length > 0).ToHashSet();
        var graph = own.ToDictionary(n => n, _ => new SortedSet<string>(StringComparer.Ordinal));
        foreach (var type in types)
        {
            string from = NamespaceOf(type);
            if (from.Length == 0) continue;
            var used = new HashSet<Type>();
            Collect(type, used);
            foreach (var t in used)
            {
                if (ignore is not null && Ignored(t, ignore)) continue;
                string to = NamespaceOf(t);
                if (to != from && own.Contains(to) && t.Assembly == assembly) graph[from].Add(to);
            }
        }
        return graph;
    }

    /// <summary>Every cycle found, as "A -> B -> A" (one per strongly connected component, reported by its members).</summary>
    public static List<string> Cycles(Dictionary<string, SortedSet<string>> graph)
    {
        var cycles = new List<string>();
        foreach (var start in graph.Keys.Order(StringComparer.Ordinal))
        {
            foreach (var next in graph[start])
            {
                var path = PathBetween(graph, next, start);
                if (path is null) continue;
                string cycle = string.Join(" -> ", new[] { start }.Concat(path));
                if (!cycles.Any(c => SameCycle(c, cycle))) cycles.Add(cycle);
            }
        }
        return cycles;
    }

    private static bool SameCycle(string a, string b) =>
        a.Split(" -> ").ToHashSet().SetEquals(b.Split(" -> ").ToHashSet());

    private static List<string>? PathBetween(Dictionary<string, SortedSet<string>> graph, string from, string to)
    {
        var previous = new Dictionary<string, string?> { [from] = null };
        var queue = new Queue<string>([from]);
        while (queue.Count > 0)
        {
            var n = queue.Dequeue();
            if (n == to)
            {
                var path = new List<string>();
                for (string? p = n; p is not null; p = previous[p]) path.Add(p);
                path.Reverse();
                return path;
            }
            foreach (var m in graph[n])
                if (previous.TryAdd(m, n)) queue.Enqueue(m);
        }
        return null;
    }

    /// <summary>A nested type belongs to its outermost declaring type's namespace.</summary>
    public static string NamespaceOf(Type t) => Outermost(t).Namespace ?? "";

    private static bool Ignored(Type? t, Func<Type, bool> ignore)
    {
        for (; t is not null; t = t.DeclaringType)
            if (ignore(t)) return true;
        return false;
    }

    private static Type Outermost(Type t)
    {
        while (t.DeclaringType is { } outer) t = outer;
        return t;
    }

    private static void Add(Type? t, HashSet<Type> used)
    {
        if (t is null || t.IsGenericParameter) return;
        if (t.HasElementType) { Add(t.GetElementType(), used); return; }
        if (t.IsConstructedGenericType)
        {
            Add(t.GetGenericTypeDefinition(), used);
            foreach (var a in t.GetGenericArguments()) Add(a, used);
            return;
        }
        used.Add(t);
    }

    private static void Collect(Type type, HashSet<Type> used)
    {
        Add(type.BaseType, used);
        foreach (var i in type.GetInterfaces()) Add(i, used);
        foreach (var a in type.GetCustomAttributesData()) Add(a.AttributeType, used);
        foreach (var f in type.GetFields(All)) Add(f.FieldType, used);
        foreach (var p in type.GetProperties(All)) Add(p.PropertyType, used);
        foreach (var e in type.GetEvents(All)) Add(e.EventHandlerType, used);
        foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            if (m is MethodInfo mi) Add(mi.ReturnType, used);
            foreach (var p in m.GetParameters()) Add(p.ParameterType, used);
            foreach (var a in m.GetCustomAttributesData()) Add(a.AttributeType, used);
            MethodBody? body;
            try { body = m.GetMethodBody(); } catch { continue; }
            if (body is null) continue;
            foreach (var l in body.LocalVariables) Add(l.LocalType, used);
            ScanIl(m, body.GetILAsByteArray() ?? [], used);
        }
    }

    private static void ScanIl(MethodBase method, byte[] il, HashSet<Type> used)
    {
        var module = method.Module;
        var typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            if (!s_opCodes.TryGetValue(value, out var op)) return; // unknown opcode: stop rather than misread
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: i += 1; break;
                case OperandType.InlineVar: i += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: i += 8; break;
                case OperandType.InlineSwitch:
                    int n = BitConverter.ToInt32(il, i);
                    i += 4 + 4 * n;
                    break;
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    int token = BitConverter.ToInt32(il, i);
                    i += 4;
                    try
                    {
                        switch (module.ResolveMember(token, typeArgs, methodArgs))
                        {
                            case Type t: Add(t, used); break;
                            case FieldInfo f: Add(f.DeclaringType, used); Add(f.FieldType, used); break;
                            case MethodBase mb:
                                Add(mb.DeclaringType, used);
                                if (mb is MethodInfo r) Add(r.ReturnType, used);
                                foreach (var p in mb.GetParameters()) Add(p.ParameterType, used);
                                if (mb.IsGenericMethod) foreach (var a in mb.GetGenericArguments()) Add(a, used);
                                break;
                        }
                    }
                    catch (ArgumentException) { }
                    catch (TypeLoadException) { }
                    break;
                default: i += 4; break; // InlineBrTarget, InlineI, InlineSig, InlineString, ShortInlineR
            }
        }
    }
}
