// The typed layer's conversions, without runtime code generation: built-in conversions for
// primitives and common collections (a switch on typeof(T), which IL2CPP compiles ahead of
// time), and user types through converters registered as plain delegates. No reflection
// over members, no MakeGenericType: what the app registers is all the library calls.

#nullable enable
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;

namespace Volley.Wire
{
    /// <summary>A wire value could not become the requested type.</summary>
    public sealed class WireConversionException : Exception
    {
        public WireConversionException(string message) : base(message) { }
    }

    /// <summary>Registered conversions between app types and wire values.</summary>
    public sealed class ValueConverters
    {
        /// <summary>Used when a client is given none; register app types here or on a client's own set.</summary>
        public static readonly ValueConverters Default = new ValueConverters();

        readonly object _lock = new object();
        readonly Dictionary<Type, Func<object, object?>> _to = new Dictionary<Type, Func<object, object?>>();
        readonly Dictionary<Type, Func<object?, object?>> _from = new Dictionary<Type, Func<object?, object?>>();

        /// <summary>
        /// Teach the wire a type: <paramref name="toWire"/> turns it into allowed values (maps with
        /// string keys, arrays, scalars), <paramref name="fromWire"/> builds it from a decoded value.
        /// </summary>
        public ValueConverters Register<T>(Func<T, object?> toWire, Func<object?, T> fromWire)
        {
            lock (_lock)
            {
                _to[typeof(T)] = o => toWire((T)o);
                _from[typeof(T)] = w => fromWire(w);
                // Arrays and lists of a registered type come for free, in both directions.
                _from[typeof(T[])] = w =>
                {
                    var items = AsArray(w, typeof(T[]));
                    if (items == null) return null;
                    var a = new T[items.Length];
                    for (var i = 0; i < a.Length; i++) a[i] = fromWire(items[i]);
                    return a;
                };
                _from[typeof(List<T>)] = w =>
                {
                    var items = AsArray(w, typeof(List<T>));
                    if (items == null) return null;
                    var l = new List<T>(items.Length);
                    foreach (var it in items) l.Add(fromWire(it));
                    return l;
                };
            }
            return this;
        }

        internal bool TryToWire(object value, out object? wire)
        {
            Func<object, object?>? f;
            lock (_lock) _to.TryGetValue(value.GetType(), out f);
            if (f == null)
            {
                wire = null;
                return false;
            }
            wire = f(value);
            return true;
        }

        /// <summary>Converts a decoded wire value to <typeparamref name="T"/>.</summary>
        public T FromWire<T>(object? wire)
        {
            var t = typeof(T);
            if (t == typeof(object)) return (T)wire!;
            Func<object?, object?>? f;
            lock (_lock) _from.TryGetValue(t, out f);
            if (f != null) return (T)f(wire)!;
            // Already the asked type (a long for long, a string for string): unboxed as is,
            // without Builtin boxing it again.
            if (wire is T same) return same;
            return (T)Builtin(wire, t)!;
        }

        static object?[]? AsArray(object? w, Type target)
        {
            if (w == null) return null;
            if (w is object?[] a) return a;
            throw new WireConversionException($"expected an array for {target.Name}, got {Describe(w)}");
        }

        static string Describe(object? w) => w == null ? "nil" : w.GetType().Name;

        object? Builtin(object? w, Type t)
        {
            var under = Nullable.GetUnderlyingType(t);
            if (under != null)
            {
                if (w == null) return null;
                t = under;
            }
            if (w == null)
            {
                if (!t.IsValueType) return null;
                throw new WireConversionException($"nil where {t.Name} was expected");
            }
            try
            {
                if (t == typeof(string)) return w as string ?? throw Mismatch(w, t);
                if (t == typeof(bool)) return w is bool b ? b : throw Mismatch(w, t);
                if (t == typeof(long)) return w is long l ? l : checked((long)Number(w, t, integral: true));
                if (t == typeof(int)) return checked((int)IntOf(w, t));
                if (t == typeof(uint)) return checked((uint)IntOf(w, t));
                if (t == typeof(short)) return checked((short)IntOf(w, t));
                if (t == typeof(ushort)) return checked((ushort)IntOf(w, t));
                if (t == typeof(byte)) return checked((byte)IntOf(w, t));
                if (t == typeof(sbyte)) return checked((sbyte)IntOf(w, t));
                if (t == typeof(ulong)) return checked((ulong)IntOf(w, t));
                if (t == typeof(double)) return Number(w, t, integral: false);
                if (t == typeof(float)) return (float)Number(w, t, integral: false);
                if (t == typeof(byte[])) return w as byte[] ?? throw Mismatch(w, t);
                if (t == typeof(DateTime)) return w is DateTime d ? d : throw Mismatch(w, t);
                if (t == typeof(object[])) return w as object[] ?? throw Mismatch(w, t);
                if (t == typeof(Dictionary<string, object?>) || t == typeof(IDictionary<string, object?>) || t == typeof(IReadOnlyDictionary<string, object?>))
                    return StringMap(w) ?? throw Mismatch(w, t);
                if (t == typeof(Dictionary<object, object?>))
                    return AnyMap(w) ?? throw Mismatch(w, t);
                if (t == typeof(string[])) return ArrayOf<string>(w, t);
                if (t == typeof(long[])) return ArrayOf<long>(w, t);
                if (t == typeof(int[])) return ArrayOf<int>(w, t);
                if (t == typeof(double[])) return ArrayOf<double>(w, t);
                if (t == typeof(bool[])) return ArrayOf<bool>(w, t);
                if (t == typeof(List<object?>)) return new List<object?>(AsArray(w, t)!);
                if (t == typeof(List<string>)) return new List<string>(ArrayOf<string>(w, t));
                if (t == typeof(Dictionary<string, long>)) return MapOf<long>(w, t);
                if (t == typeof(Dictionary<string, int>)) return MapOf<int>(w, t);
                if (t == typeof(Dictionary<string, double>)) return MapOf<double>(w, t);
                if (t == typeof(Dictionary<string, string>)) return MapOf<string>(w, t);
                if (t.IsEnum) return EnumOf(w, t);
            }
            catch (OverflowException)
            {
                throw new WireConversionException($"{w} does not fit in {t.Name}");
            }
            throw new WireConversionException($"no conversion to {t.FullName}: register one with ValueConverters.Register<{t.Name}>()");
        }

        static long IntOf(object w, Type t) => w is long l ? l : checked((long)Number(w, t, integral: true));

        static double Number(object w, Type t, bool integral)
        {
            double d;
            if (w is long l) d = l;
            else if (w is double x) d = x;
            else throw Mismatch(w, t);
            if (integral && (Math.Floor(d) != d || double.IsInfinity(d))) throw new WireConversionException($"{d.ToString(CultureInfo.InvariantCulture)} is not an integer ({t.Name})");
            return d;
        }

        static object EnumOf(object w, Type t)
        {
            // Enums travel as their names (what a TypeScript string union expects), or numbers.
            if (w is string s)
            {
                foreach (var name in Enum.GetNames(t))
                    if (string.Equals(name, s, StringComparison.OrdinalIgnoreCase)) return Enum.Parse(t, name);
                throw new WireConversionException($"'{s}' is not a {t.Name}");
            }
            if (w is long l) return Enum.ToObject(t, l);
            throw Mismatch(w, t);
        }

        T[] ArrayOf<T>(object w, Type t)
        {
            var items = AsArray(w, t)!;
            var a = new T[items.Length];
            for (var i = 0; i < a.Length; i++) a[i] = FromWire<T>(items[i]);
            return a;
        }

        Dictionary<string, T> MapOf<T>(object w, Type t)
        {
            var m = StringMap(w) ?? throw Mismatch(w, t);
            var d = new Dictionary<string, T>(m.Count);
            foreach (var kv in m) d[kv.Key] = FromWire<T>(kv.Value);
            return d;
        }

        static Dictionary<string, object?>? StringMap(object w)
        {
            if (w is Dictionary<string, object?> m) return m;
            return null;
        }

        static Dictionary<object, object?>? AnyMap(object w)
        {
            if (w is Dictionary<object, object?> a) return a;
            if (w is Dictionary<string, object?> m)
            {
                var d = new Dictionary<object, object?>(m.Count);
                foreach (var kv in m) d[kv.Key] = kv.Value;
                return d;
            }
            return null;
        }

        static WireConversionException Mismatch(object w, Type t) =>
            new WireConversionException($"expected {t.Name}, got {Describe(w)}");
    }

    /// <summary>Helpers for hand-written converters: read fields of a decoded map.</summary>
    public static class WireMap
    {
        public static Dictionary<string, object?> Of(object? wire) =>
            wire as Dictionary<string, object?> ?? throw new WireConversionException($"expected a map, got {(wire == null ? "nil" : wire.GetType().Name)}");

        public static T Get<T>(this Dictionary<string, object?> map, string key, ValueConverters? converters = null)
        {
            map.TryGetValue(key, out var v);
            try
            {
                return (converters ?? ValueConverters.Default).FromWire<T>(v);
            }
            catch (WireConversionException e)
            {
                throw new WireConversionException($"field '{key}': {e.Message}");
            }
        }
    }
}
