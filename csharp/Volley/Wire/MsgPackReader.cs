// msgpack decoder for the Volley wire. One walker serves two purposes (DECISIONS A):
// scanning a value (its byte extent, element count and depth, with no allocation) so an
// over-limit request can be refused by id without being decoded, and decoding it.
//
// Decoded forms: nil → null, bool → bool, every integer → long, float32/64 → double,
// str → string, bin → byte[], array → object?[], map → Dictionary<string, object?> when
// every key is a string (the usual case) else Dictionary<object, object?> (keys string or
// long), timestamp (ext −1) → DateTime (UTC). Refused: 0xc1, every other ext type, integers
// beyond ±(2^53−1) (a JavaScript peer could not have meant them exactly), other map keys.

#nullable enable
using System;
using System.Collections.Generic;
using System.Text;

namespace Volley.Wire
{
    /// <summary>Bytes that are not a valid Volley msgpack value.</summary>
    public sealed class MsgPackDecodeException : Exception
    {
        public MsgPackDecodeException(string message) : base(message) { }
    }

    /// <summary>What a scan measured for one value.</summary>
    public struct ScanResult
    {
        /// <summary>Offset just past the value.</summary>
        public int End;
        /// <summary>Every value counts one, containers included.</summary>
        public int Elements;
        /// <summary>Deepest array/map nesting; a top-level container is depth 1.</summary>
        public int Depth;
        /// <summary>
        /// Why the value holds something the wire refuses (an ext type other than −1, an
        /// unsafe integer, a map key that is neither str nor int), or null. Such a value is
        /// still well-formed msgpack: its extent is known and only its message is refused.
        /// </summary>
        public string? Invalid;
    }

    public static class MsgPackReader
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        const long MaxSafe = MsgPackWriter.MaxSafeInteger;
        /// <summary>
        /// Nesting past this is not walked recursively (a hostile frame can't exhaust the stack):
        /// the value is skipped iteratively and its message refused, like any value §2 refuses.
        /// </summary>
        public const int HardMaxDepth = 1000;
        /// <summary>DateTime's range in Unix seconds (0001-01-01 … 9999-12-31T23:59:59).</summary>
        const long MinUnixSeconds = -62135596800L, MaxUnixSeconds = 253402300799L;

        /// <summary>Measures the value starting at <paramref name="pos"/> without building it.</summary>
        public static ScanResult Scan(byte[] buf, int pos, int end)
        {
            var w = new Walker(buf, pos, end, build: false);
            w.Value(0);
            return new ScanResult { End = w.Pos, Elements = w.Elements, Depth = w.MaxDepth, Invalid = w.Invalid };
        }

        /// <summary>Decodes the value starting at <paramref name="pos"/>; <paramref name="next"/> is the offset after it.</summary>
        public static object? Decode(byte[] buf, int pos, int end, out int next)
        {
            var w = new Walker(buf, pos, end, build: true);
            var v = w.Value(0);
            next = w.Pos;
            if (w.Invalid != null) throw new MsgPackDecodeException(w.Invalid);
            return v;
        }

        /// <summary>
        /// Decodes a value the scan found <see cref="ScanResult.Invalid"/>, with each refused
        /// part read as nil, so the envelope (message type, id) can still be read.
        /// </summary>
        public static object? DecodeLenient(byte[] buf, int pos, int end)
        {
            var w = new Walker(buf, pos, end, build: true);
            return w.Value(0);
        }

        /// <summary>
        /// Reads the head of a successful response <c>[1, id, nil, result]</c> without decoding
        /// the envelope: the id (any unsigned integer format up to 2^32−1) and where the result
        /// starts. False for anything else (an error response, another message, an odd form):
        /// the caller decodes it in full.
        /// </summary>
        public static bool TryResponseHead(byte[] buf, int pos, int end, out uint id, out int resultAt)
        {
            id = 0;
            resultAt = 0;
            if (end - pos < 4 || buf[pos] != 0x94 || buf[pos + 1] != 0x01) return false;
            var p = pos + 2;
            var t = buf[p++];
            ulong v;
            if (t <= 0x7f) v = t;
            else if (t == 0xcc && end - p >= 1) v = buf[p++];
            else if (t == 0xcd && end - p >= 2) { v = (ulong)(buf[p] << 8 | buf[p + 1]); p += 2; }
            else if (t == 0xce && end - p >= 4) { v = (uint)(buf[p] << 24 | buf[p + 1] << 16 | buf[p + 2] << 8 | buf[p + 3]); p += 4; }
            else return false;
            if (p >= end || buf[p] != 0xc0) return false;
            id = (uint)v;
            resultAt = p + 1;
            return resultAt < end;
        }

        /// <summary>Decodes exactly one value filling the whole array.</summary>
        public static object? Decode(byte[] buf)
        {
            var v = Decode(buf, 0, buf.Length, out var next);
            if (next != buf.Length) throw new MsgPackDecodeException($"{buf.Length - next} bytes after the value");
            return v;
        }

        struct Walker
        {
            readonly byte[] _b;
            readonly int _end;
            readonly bool _build;
            public int Pos;
            public int Elements;
            public int MaxDepth;
            public string? Invalid;

            public Walker(byte[] b, int pos, int end, bool build)
            {
                _b = b;
                Pos = pos;
                _end = end;
                _build = build;
                Elements = 0;
                MaxDepth = 0;
                Invalid = null;
            }

            /// <summary>Well-formed but refused: remember why, read it as nil, keep walking.</summary>
            object? Refuse(string why)
            {
                Invalid ??= why;
                return null;
            }

            void Need(int n)
            {
                if (n < 0 || _end - Pos < n) throw new MsgPackDecodeException("value cut short");
            }

            byte U8() { Need(1); return _b[Pos++]; }
            ushort U16() { Need(2); var v = (ushort)(_b[Pos] << 8 | _b[Pos + 1]); Pos += 2; return v; }
            uint U32() { Need(4); var v = (uint)(_b[Pos] << 24 | _b[Pos + 1] << 16 | _b[Pos + 2] << 8 | _b[Pos + 3]); Pos += 4; return v; }
            ulong U64() { var hi = (ulong)U32(); return hi << 32 | U32(); }

            int Len32()
            {
                var n = U32();
                if (n > int.MaxValue) throw new MsgPackDecodeException("length beyond 2^31");
                return (int)n;
            }

            object? Int(long v) => _build ? (object)v : null;

            public object? Value(int depth)
            {
                Elements++;
                var t = U8();
                if (t <= 0x7f) return Int(t);
                if (t >= 0xe0) return Int((sbyte)t);
                if (t <= 0x8f) return Map(t & 0x0f, depth);
                if (t <= 0x9f) return Array(t & 0x0f, depth);
                if (t <= 0xbf) return Str(t & 0x1f);
                switch (t)
                {
                    case 0xc0: return null;
                    case 0xc2: return _build ? (object)false : null;
                    case 0xc3: return _build ? (object)true : null;
                    case 0xc4: return Bin(U8());
                    case 0xc5: return Bin(U16());
                    case 0xc6: return Bin(Len32());
                    case 0xc7: return Ext(U8());
                    case 0xc8: return Ext(U16());
                    case 0xc9: return Ext(Len32());
                    case 0xca:
                    {
                        var bits = (int)U32();
                        return _build ? (object)(double)BitConverter.Int32BitsToSingle(bits) : null;
                    }
                    case 0xcb:
                    {
                        var bits = (long)U64();
                        return _build ? (object)BitConverter.Int64BitsToDouble(bits) : null;
                    }
                    case 0xcc: return Int(U8());
                    case 0xcd: return Int(U16());
                    case 0xce: return Int(U32());
                    case 0xcf:
                    {
                        var v = U64();
                        if (v > (ulong)MaxSafe) return Refuse($"uint64 {v} is beyond 2^53−1");
                        return Int((long)v);
                    }
                    case 0xd0: return Int((sbyte)U8());
                    case 0xd1: return Int((short)U16());
                    case 0xd2: return Int((int)U32());
                    case 0xd3:
                    {
                        var v = (long)U64();
                        if (v > MaxSafe || v < -MaxSafe) return Refuse($"int64 {v} is beyond ±(2^53−1)");
                        return Int(v);
                    }
                    case 0xd4: return Ext(1);
                    case 0xd5: return Ext(2);
                    case 0xd6: return Ext(4);
                    case 0xd7: return Ext(8);
                    case 0xd8: return Ext(16);
                    case 0xd9: return Str(U8());
                    case 0xda: return Str(U16());
                    case 0xdb: return Str(Len32());
                    case 0xdc: return Array(U16(), depth);
                    case 0xdd: return Array(Len32(), depth);
                    case 0xde: return Map(U16(), depth);
                    case 0xdf: return Map(Len32(), depth);
                }
                throw new MsgPackDecodeException("0xc1 is never used in msgpack");
            }

            object? Str(int n)
            {
                Need(n);
                string? s = null;
                try
                {
                    // Validated even when only scanning: a str that is not UTF-8 is a broken value.
                    if (_build) s = Utf8.GetString(_b, Pos, n);
                    else Utf8.GetCharCount(_b, Pos, n);
                }
                catch (ArgumentException)
                {
                    throw new MsgPackDecodeException("str is not valid UTF-8");
                }
                Pos += n;
                return s;
            }

            object? Bin(int n)
            {
                Need(n);
                byte[]? a = null;
                if (_build)
                {
                    a = new byte[n];
                    Buffer.BlockCopy(_b, Pos, a, 0, n);
                }
                Pos += n;
                return a;
            }

            object? Ext(int n)
            {
                var type = (sbyte)U8();
                Need(n);
                if (type != -1)
                {
                    Pos += n;
                    return Refuse($"ext type {type} is not allowed (only the timestamp, -1)");
                }
                long sec;
                uint nsec;
                // A timestamp this side cannot hold is refused like any value §2 refuses: its
                // extent is known, so only its message fails, never the connection.
                if (n == 4) { sec = U32(); nsec = 0; }
                else if (n == 8) { var v = U64(); nsec = (uint)(v >> 34); sec = (long)(v & 0x3_ffff_ffffUL); }
                else if (n == 12) { nsec = U32(); sec = (long)U64(); }
                else
                {
                    Pos += n;
                    return Refuse($"a timestamp of {n} bytes is not a msgpack timestamp");
                }
                if (nsec >= 1_000_000_000) return Refuse("timestamp nanoseconds beyond 10^9");
                if (sec < MinUnixSeconds || sec > MaxUnixSeconds) return Refuse($"timestamp {sec} s is out of DateTime's range");
                if (!_build) return null;
                return DateTime.UnixEpoch.AddTicks(sec * TimeSpan.TicksPerSecond + nsec / 100);
            }

            /// <summary>One level deeper; false past HardMaxDepth (the container's <paramref name="values"/> were skipped).</summary>
            bool Deeper(ref int depth, long values)
            {
                if (++depth > MaxDepth) MaxDepth = depth;
                if (depth <= HardMaxDepth) return true;
                Refuse($"nested deeper than {HardMaxDepth}");
                Skip(values);
                return false;
            }

            /// <summary>Walks past <paramref name="values"/> values without recursion (what they hold is not looked at).</summary>
            void Skip(long values)
            {
                while (values > 0)
                {
                    // Each value takes at least one byte: a count beyond the bytes left is a lie.
                    Need(values > int.MaxValue ? int.MaxValue : (int)values);
                    values--;
                    Elements++;
                    var t = U8();
                    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) continue;
                    if (t <= 0x8f) { values += 2L * (t & 0x0f); continue; }
                    if (t <= 0x9f) { values += t & 0x0f; continue; }
                    if (t <= 0xbf) { Jump(t & 0x1f); continue; }
                    switch (t)
                    {
                        case 0xc4: Jump(U8()); break;
                        case 0xc5: Jump(U16()); break;
                        case 0xc6: Jump(Len32()); break;
                        case 0xc7: Jump(U8() + 1); break;
                        case 0xc8: Jump(U16() + 1); break;
                        case 0xc9: Jump(Len32() + 1L); break;
                        case 0xca: case 0xd2: Jump(4); break;
                        case 0xcb: case 0xcf: case 0xd3: Jump(8); break;
                        case 0xcc: case 0xd0: Jump(1); break;
                        case 0xcd: case 0xd1: Jump(2); break;
                        case 0xce: Jump(4); break;
                        case 0xd4: Jump(2); break;
                        case 0xd5: Jump(3); break;
                        case 0xd6: Jump(5); break;
                        case 0xd7: Jump(9); break;
                        case 0xd8: Jump(17); break;
                        case 0xd9: Jump(U8()); break;
                        case 0xda: Jump(U16()); break;
                        case 0xdb: Jump(Len32()); break;
                        case 0xdc: values += U16(); break;
                        case 0xdd: values += Len32(); break;
                        case 0xde: values += 2L * U16(); break;
                        case 0xdf: values += 2L * Len32(); break;
                        default: throw new MsgPackDecodeException("0xc1 is never used in msgpack");
                    }
                }
            }

            void Jump(long n)
            {
                if (n > int.MaxValue) throw new MsgPackDecodeException("value cut short");
                Need((int)n);
                Pos += (int)n;
            }

            object? Array(int n, int depth)
            {
                if (!Deeper(ref depth, n)) return null;
                // Each element takes at least one byte: a count beyond the bytes left is a lie
                // (and would otherwise allocate a huge array up front).
                Need(n);
                if (!_build)
                {
                    for (var i = 0; i < n; i++) Value(depth);
                    return null;
                }
                var a = new object?[n];
                for (var i = 0; i < n; i++) a[i] = Value(depth);
                return a;
            }

            object? Map(int n, int depth)
            {
                if (!Deeper(ref depth, 2L * n)) return null;
                Need(n * 2L > int.MaxValue ? int.MaxValue : n * 2);
                Dictionary<string, object?>? strMap = _build ? new Dictionary<string, object?>(n) : null;
                Dictionary<object, object?>? anyMap = null;
                for (var i = 0; i < n; i++)
                {
                    var keyStart = Pos;
                    var key = Value(depth);
                    var kt = _b[keyStart];
                    var isStr = (kt >= 0xa0 && kt <= 0xbf) || (kt >= 0xd9 && kt <= 0xdb);
                    var isInt = kt <= 0x7f || kt >= 0xe0 || (kt >= 0xcc && kt <= 0xd3);
                    var val = Value(depth);
                    if (!isStr && !isInt) Refuse("map key is neither a string nor an integer");
                    if (!_build || key == null || (!isStr && !isInt)) continue;
                    if (anyMap == null && isStr)
                    {
                        strMap![(string)key!] = val;
                        continue;
                    }
                    if (anyMap == null)
                    {
                        anyMap = new Dictionary<object, object?>(n);
                        foreach (var kv in strMap!) anyMap[kv.Key] = kv.Value;
                    }
                    anyMap[key!] = val;
                }
                return anyMap != null ? anyMap : (object?)strMap;
            }
        }
    }
}
