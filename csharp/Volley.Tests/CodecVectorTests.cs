// The codec against the conformance kit's vectors (conformance/vectors.json, written by
// msgpackr), plus the wire rules of DECISIONS A that the vectors don't spell out.

using System;
using System.Collections.Generic;
using System.Linq;
using Volley.Wire;
using Xunit;

namespace Volley.Tests;

public class CodecVectorTests
{
    /// <summary>Every vector the codec gets wrong (case 6.1): decode "both" (its canonical form too) and "decode", encode "both" as Volley or canonically, refuse "invalid".</summary>
    public static List<string> Mismatches()
    {
        var wrong = new List<string>();
        foreach (var v in Kit.Vectors.GetProperty("vectors").EnumerateArray())
        {
            var name = v.GetProperty("name").GetString();
            var kind = v.GetProperty("kind").GetString();
            var hexes = new List<string> { v.GetProperty("hex").GetString()! };
            if (v.TryGetProperty("canonical", out var canonical)) hexes.Add(canonical.GetString()!);
            if (kind == "invalid")
            {
                try
                {
                    var decoded = MsgPackReader.Decode(Convert.FromHexString(hexes[0]));
                    wrong.Add($"{name}: accepted as {Kit.Show(decoded)}");
                }
                catch (MsgPackDecodeException) { }
                continue;
            }
            var want = Kit.Untag(v.GetProperty("value"));
            foreach (var h in hexes)
            {
                object? decoded = null;
                var refused = false;
                try { decoded = MsgPackReader.Decode(Convert.FromHexString(h)); }
                catch (MsgPackDecodeException) { refused = true; }
                if (refused || !Kit.Same(decoded, want)) wrong.Add($"{name}: {h} decoded {(refused ? "as refused" : Kit.Show(decoded))}, want {Kit.Show(want)}");
            }
            if (kind == "both")
            {
                string hex;
                try { hex = Convert.ToHexString(MsgPackWriter.Encode(want)).ToLowerInvariant(); }
                catch (MsgPackEncodeException e) { hex = "refused: " + e.Message; }
                // What Volley writes, or the smallest form (vectors.json "canonical": fixmap where msgpackr writes map16).
                if (!hexes.Contains(hex)) wrong.Add($"{name}: encoded {hex}, want {string.Join(" or ", hexes)}");
            }
        }
        return wrong;
    }

    [Fact]
    public void Every_vector_of_the_kit_decodes_encodes_or_is_refused_as_msgpackr_does()
    {
        var wrong = Mismatches();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void Wire_case_encodings_are_among_the_accepted_ones()
    {
        foreach (var c in Kit.Vectors.GetProperty("wire").EnumerateObject())
            foreach (var w in c.Value.EnumerateArray())
            {
                var hex = Convert.ToHexString(MsgPackWriter.Encode(Kit.Untag(w.GetProperty("value")))).ToLowerInvariant();
                var accept = w.GetProperty("accept").EnumerateArray().Select(a => a.GetString()).ToList();
                Assert.True(accept.Contains(hex), $"case {c.Name}: {hex} not in {string.Join("|", accept)}");
            }
    }

    [Fact]
    public void Refused_values_are_reported_by_the_scan_with_their_extent_known()
    {
        // [2, "note", [ext 1]]: well-formed, so the scan knows where it ends and marks it invalid.
        var bytes = Convert.FromHexString("9302a46e6f746591d40100" + "c0");
        var scan = MsgPackReader.Scan(bytes, 0, bytes.Length);
        Assert.Equal(bytes.Length - 1, scan.End);
        Assert.NotNull(scan.Invalid);
        // Broken msgpack throws instead.
        Assert.Throws<MsgPackDecodeException>(() => MsgPackReader.Scan(new byte[] { 0x92, 0xc1, 0x01 }, 0, 3));
        Assert.Throws<MsgPackDecodeException>(() => MsgPackReader.Scan(new byte[] { 0xdd, 0xff, 0xff, 0xff, 0xff }, 0, 5)); // count beyond the bytes
    }

    [Fact]
    public void Depth_and_elements_are_measured_as_the_server_measures_them()
    {
        var bytes = MsgPackWriter.Encode(new object?[] { 0L, 1L, "m", new object?[] { new object?[] { 1L } } });
        var scan = MsgPackReader.Scan(bytes, 0, bytes.Length);
        Assert.Equal(3, scan.Depth); // envelope 1, params 2, nested 3 → params depth 2
        Assert.Equal(7, scan.Elements);
        // A hostile nesting can't exhaust the stack: past HardMaxDepth it is skipped without
        // recursion and refused (only its message fails), its extent still known.
        var deep = Enumerable.Repeat((byte)0x91, 100_000).Append((byte)0xc0).ToArray();
        var d = MsgPackReader.Scan(deep, 0, deep.Length);
        Assert.Equal(deep.Length, d.End);
        Assert.Equal(100_001, d.Elements);
        Assert.Contains("nested deeper", d.Invalid);
        Assert.Null(MsgPackReader.DecodeLenient(deep, 0, deep.Length) is object?[] a ? null : "not an array");
        Assert.Throws<MsgPackDecodeException>(() => MsgPackReader.Decode(deep));
        // Cut short inside the skipped part is still a broken frame.
        Assert.Throws<MsgPackDecodeException>(() => MsgPackReader.Scan(deep, 0, deep.Length - 1));
    }

    [Fact]
    public void Integers_beyond_32_bits_are_int64_and_unsafe_ones_are_refused()
    {
        Assert.Equal("cf0000010000000000", Convert.ToHexString(MsgPackWriter.Encode(1L << 40)).ToLowerInvariant());
        Assert.Equal("d3ffffff0000000000", Convert.ToHexString(MsgPackWriter.Encode(-(1L << 40))).ToLowerInvariant());
        Assert.Throws<MsgPackEncodeException>(() => MsgPackWriter.Encode(1L << 53));
        Assert.Throws<MsgPackEncodeException>(() => MsgPackWriter.Encode(ulong.MaxValue));
        Assert.Throws<MsgPackEncodeException>(() => MsgPackWriter.Encode(1.5m));
        Assert.Throws<MsgPackEncodeException>(() => MsgPackWriter.Encode(new object()));
        Assert.Throws<MsgPackEncodeException>(() => MsgPackWriter.Encode(new Dictionary<object, object?> { [1.5] = 1 }));
    }

    [Fact]
    public void Typed_conversions_check_ranges_and_kinds()
    {
        var conv = new ValueConverters();
        Assert.Equal(5, conv.FromWire<int>(5L));
        Assert.Equal(2.0, conv.FromWire<double>(2L));
        Assert.Throws<WireConversionException>(() => conv.FromWire<int>(1L << 40));
        Assert.Throws<WireConversionException>(() => conv.FromWire<int>(1.5));
        Assert.Throws<WireConversionException>(() => conv.FromWire<int>(null));
        Assert.Null(conv.FromWire<int?>(null));
        Assert.Equal(new[] { "a", "b" }, conv.FromWire<string[]>(new object?[] { "a", "b" }));
        Assert.Equal(DayOfWeek.Friday, conv.FromWire<DayOfWeek>("friday"));
    }
}
