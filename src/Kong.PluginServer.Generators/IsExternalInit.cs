namespace System.Runtime.CompilerServices;

// records and init accessors on netstandard2.0
internal static class IsExternalInit;
