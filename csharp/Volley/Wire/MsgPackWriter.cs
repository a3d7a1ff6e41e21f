// msgpack encoder for the value types the Volley wire allows (protocol/SPEC.md, DECISIONS A):
// nil, bool, int, float32/64, str, bin, array, map (str or int keys), timestamp (ext -1).
// Hand-written instead of a NuGet msgpack library: no dependencies to clash with a game's
// own copies, nothing generated at run time (IL2CPP-safe), and the wire rules (no other ext
// types, integers beyond ±(2^53−1) refused, ints past 32 bits as int64/uint64) in one place.

#nullable enable
using System;
using System.Collections;
using System.Collections.Generic;
using System.Text;

namespace Volley.Wire
{
    /// <summary>A value could not be put on the wire (a type or number the protocol refuses).</summary>
    public sealed class MsgPackEncodeException : Exception
    {
        public MsgPackEncodeException(string message) : base(message) { }
    }

    /// <summary>Appends msgpack values to a growable buffer.</summary>
    public sealed class MsgPackWriter
    {
        /// <summary>2^53 − 1: the largest integer a JavaScript peer reads exactly.</summary>
        public const long MaxSafeInteger = 9007199254740991L;

        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        byte[] _buf;
        int _len;
        int _depth;
        readonly int _maxDepth;

        public MsgPackWriter(int capacity = 256, int maxDepth = 64)
        {
            _buf = new byte[Math.Max(16, capacity)];
            _maxDepth = maxDepth;
        }

        public int Length => _len;

        /// <summary>An exact-size copy of what was written (owned: safe to keep).</summary>
        public byte[] ToArray()
        {
            var a = new byte[_len];
            Buffer.BlockCopy(_buf, 0, a, 0, _len);
            return a;
        }

        /// <summary>Empties the writer for reuse (also after a write that threw half-way).</summary>
        public void Clear()
        {
            _len = 0;
            _depth = 0;
        }

        /// <summary>Bytes the buffer holds now.</summary>
        public int Capacity => _buf.Length;

        /// <summary>Drops a buffer grown past need (a writer kept for reuse after one big message).</summary>
        public void Shrink(int capacity)
        {
            _len = 0;
            _depth = 0;
            _buf = new byte[Math.Max(16, capacity)];
        }

        /// <summary>Encodes one value to a fresh byte array.</summary>
        public static byte[] Encode(object? value, ValueConverters? converters = null)
        {
            var w = new MsgPackWriter();
            w.Write(value, converters);
            return w.ToArray();
        }

        void Ensure(int n)
        {
            if (_len + n <= _buf.Length) return;
            var size = _buf.Length * 2;
            while (size < _len + n) size *= 2;
            Array.Resize(ref _buf, size);
        }

        void B(byte b)
        {
            Ensure(1);
            _buf[_len++] = b;
        }

        void BE16(byte tag, ushort v)
        {
            Ensure(3);
            _buf[_len++] = tag;
            _buf[_len++] = (byte)(v >> 8);
            _buf[_len++] = (byte)v;
        }

        void BE32(byte tag, uint v)
        {
            Ensure(5);
            _buf[_len++] = tag;
            _buf[_len++] = (byte)(v >> 24);
            _buf[_len++] = (byte)(v >> 16);
            _buf[_len++] = (byte)(v >> 8);
            _buf[_len++] = (byte)v;
        }

        void BE64(byte tag, ulong v)
        {
            Ensure(9);
            _buf[_len++] = tag;
            for (var s = 56; s >= 0; s -= 8) _buf[_len++] = (byte)(v >> s);
        }

        public void WriteNil() => B(0xc0);

        public void WriteBool(bool v) => B(v ? (byte)0xc3 : (byte)0xc2);

        /// <summary>Smallest form, as msgpackr writes it; beyond 32 bits int64/uint64, never float.</summary>
        public void WriteInt(long v)
        {
            if (v > MaxSafeInteger || v < -MaxSafeInteger)
                throw new MsgPackEncodeException($"integer {v} is beyond ±(2^53−1): a JavaScript peer cannot read it exactly");
            if (v >= 0)
            {
                if (v < 128) B((byte)v);
                else if (v < 256) { Ensure(2); _buf[_len++] = 0xcc; _buf[_len++] = (byte)v; }
                else if (v < 65536) BE16(0xcd, (ushort)v);
                else if (v <= uint.MaxValue) BE32(0xce, (uint)v);
                else BE64(0xcf, (ulong)v); // uint64, as the kit's vectors say Volley writes it
            }
            else
            {
                if (v >= -32) B((byte)(sbyte)v);
                else if (v >= sbyte.MinValue) { Ensure(2); _buf[_len++] = 0xd0; _buf[_len++] = (byte)(sbyte)v; }
                else if (v >= short.MinValue) BE16(0xd1, (ushort)(short)v);
                else if (v >= int.MinValue) BE32(0xd2, (uint)(int)v);
                else BE64(0xd3, (ulong)v);
            }
        }

        public void WriteFloat32(float v) => BE32(0xca, float.IsNaN(v) ? 0x7fc00000U : (uint)BitConverter.SingleToInt32Bits(v));

        /// <summary>float64; NaN in JavaScript's canonical form (7ff8…), not .NET's negative quiet NaN.</summary>
        public void WriteFloat64(double v) => BE64(0xcb, double.IsNaN(v) ? 0x7ff8000000000000UL : (ulong)BitConverter.DoubleToInt64Bits(v));

        public void WriteString(string s)
        {
            var n = Utf8.GetByteCount(s);
            if (n < 32) B((byte)(0xa0 | n));
            else if (n < 256) { Ensure(2); _buf[_len++] = 0xd9; _buf[_len++] = (byte)n; }
            else if (n < 65536) BE16(0xda, (ushort)n);
            else BE32(0xdb, (uint)n);
            Ensure(n);
            _len += Utf8.GetBytes(s, 0, s.Length, _buf, _len);
        }

        public void WriteBin(byte[] b, int offset, int count)
        {
            if (count < 256) { Ensure(2); _buf[_len++] = 0xc4; _buf[_len++] = (byte)count; }
            else if (count < 65536) BE16(0xc5, (ushort)count);
            else BE32(0xc6, (uint)count);
            Ensure(count);
            Buffer.BlockCopy(b, offset, _buf, _len, count);
            _len += count;
        }

        public void WriteArrayHeader(int n)
        {
            if (n < 16) B((byte)(0x90 | n));
            else if (n < 65536) BE16(0xdc, (ushort)n);
            else BE32(0xdd, (uint)n);
        }

        public void WriteMapHeader(int n)
        {
            if (n < 16) B((byte)(0x80 | n));
            else if (n < 65536) BE16(0xde, (ushort)n);
            else BE32(0xdf, (uint)n);
        }

        /// <summary>msgpack timestamp (ext −1) in the smallest of its three forms.</summary>
        public void WriteTimestamp(DateTime t)
        {
            var utc = t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : t;
            var ticks = utc.Ticks - DateTime.UnixEpoch.Ticks;
            var sec = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rem);
            if (rem < 0) { sec--; rem += TimeSpan.TicksPerSecond; }
            var nsec = (uint)(rem * 100);
            // The forms msgpackr picks: 32-bit for whole seconds below 2^32, 64-bit for
            // fractions below 2^32 s, 96-bit otherwise (before 1970, after 2106).
            if (sec >= 0 && sec <= uint.MaxValue)
            {
                if (nsec == 0 && sec <= uint.MaxValue)
                {
                    Ensure(2); _buf[_len++] = 0xd6; _buf[_len++] = 0xff;
                    Raw32((uint)sec);
                }
                else
                {
                    Ensure(2); _buf[_len++] = 0xd7; _buf[_len++] = 0xff;
                    var v = ((ulong)nsec << 34) | (ulong)sec;
                    Raw32((uint)(v >> 32)); Raw32((uint)v);
                }
            }
            else
            {
                Ensure(3); _buf[_len++] = 0xc7; _buf[_len++] = 12; _buf[_len++] = 0xff;
                Raw32(nsec);
                Raw32((uint)((ulong)sec >> 32)); Raw32((uint)sec);
            }
        }

        void Raw32(uint v)
        {
            Ensure(4);
            _buf[_len++] = (byte)(v >> 24);
            _buf[_len++] = (byte)(v >> 16);
            _buf[_len++] = (byte)(v >> 8);
            _buf[_len++] = (byte)v;
        }

        /// <summary>
        /// Writes any allowed value: null, bool, integers, float, double, string, byte[],
        /// ArraySegment&lt;byte&gt;, DateTime/DateTimeOffset, IDictionary (string or integer keys),
        /// IList / IEnumerable (arrays), IWireWritable, or a type with a registered converter.
        /// Anything else (decimal, char, Guid, delegates, BigInteger…) is refused.
        /// </summary>
        public void Write(object? v, ValueConverters? converters = null)
        {
            switch (v)
            {
                case null: WriteNil(); return;
                case bool b: WriteBool(b); return;
                case int i: WriteInt(i); return;
                case long l: WriteInt(l); return;
                case uint ui: WriteInt(ui); return;
                case ulong ul:
                    if (ul > MaxSafeInteger) throw new MsgPackEncodeException($"integer {ul} is beyond 2^53−1");
                    WriteInt((long)ul); return;
                case short s: WriteInt(s); return;
                case ushort us: WriteInt(us); return;
                case byte by: WriteInt(by); return;
                case sbyte sb: WriteInt(sb); return;
                case double d: WriteFloat64(d); return;
                case float f: WriteFloat32(f); return;
                case string str: WriteString(str); return;
                case byte[] bin: WriteBin(bin, 0, bin.Length); return;
                case ArraySegment<byte> seg: WriteBin(seg.Array!, seg.Offset, seg.Count); return;
                case DateTime dt: WriteTimestamp(dt); return;
                case DateTimeOffset dto: WriteTimestamp(dto.UtcDateTime); return;
                case IWireWritable ww: Nested(ww.ToWire(), converters); return;
            }
            var conv = converters ?? ValueConverters.Default;
            if (conv.TryToWire(v, out var wire)) { Nested(wire, converters); return; }
            switch (v)
            {
                case IDictionary map:
                    Enter();
                    WriteMapHeader(map.Count);
                    foreach (DictionaryEntry e in map)
                    {
                        if (!(e.Key is string) && !IsInteger(e.Key))
                            throw new MsgPackEncodeException($"map key of type {e.Key.GetType().Name}: only string or integer keys cross the wire");
                        Write(e.Key, converters);
                        Write(e.Value, converters);
                    }
                    _depth--;
                    return;
                case IList list:
                    Enter();
                    WriteArrayHeader(list.Count);
                    for (var i = 0; i < list.Count; i++) Write(list[i], converters);
                    _depth--;
                    return;
                case IEnumerable seq when !(v is string):
                    var items = new List<object?>();
                    foreach (var item in seq) items.Add(item);
                    Write(items, converters);
                    return;
            }
            throw new MsgPackEncodeException($"values of type {v.GetType().FullName} do not cross the wire (register a converter or implement IWireWritable)");
        }

        void Nested(object? wire, ValueConverters? converters)
        {
            Enter();
            Write(wire, converters);
            _depth--;
        }

        void Enter()
        {
            if (++_depth > _maxDepth) throw new MsgPackEncodeException($"nested deeper than {_maxDepth} (a cycle?)");
        }

        static bool IsInteger(object o) =>
            o is int || o is long || o is uint || o is ulong || o is short || o is ushort || o is byte || o is sbyte;
    }

    /// <summary>A type that knows its own wire form (built from allowed values: maps, arrays, scalars).</summary>
    public interface IWireWritable
    {
        object? ToWire();
    }
}
