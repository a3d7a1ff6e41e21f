// The feature `items` (SPEC §11, §12, version 1.1) against a real Volley server, with the wire
// read through a tapping transport: the client names it in `$features` after `$ack`; as reader
// it takes an `$items` whole and answers it once, after its last value was taken (a reader that
// stops first refuses it CANCELLED), and refuses one out of shape; as producer (a HandleStream
// handler, an upload) it sends what its enumerator yields without suspending as one `$items`,
// within the window of 16 items, and falls back to one `$item` each for a batch past the
// server's limits. Kit case 12.13 checks the reader on the wire too, 12.7 the upload's window.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Volley.Transport;
using Volley.Wire;
using Xunit;

namespace Volley.Tests;

public class StreamItemsTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public StreamItemsTests(OwnServerFixture f) => _server = f.Server;

    /// <summary>ClientWebSocketTransport, each message it sends (up) and receives (down) decoded into the log, in order.</summary>
    sealed class Tap : IVolleyTransport
    {
        readonly ClientWebSocketTransport _inner = new ClientWebSocketTransport();
        readonly List<(bool Up, object?[] Msg)> _log;

        public Tap(List<(bool, object?[])> log)
        {
            _log = log;
            // Subscribed before the client: a response is logged before the client acts on it.
            _inner.Message += m => Record(false, m);
        }

        void Record(bool up, ArraySegment<byte> m)
        {
            lock (_log)
                for (var pos = m.Offset; pos < m.Offset + m.Count;)
                    _log.Add((up, (object?[])MsgPackReader.Decode(m.Array!, pos, m.Offset + m.Count, out pos)!));
        }

        public bool ReadsHttpStatus => true;
        public event Action<ArraySegment<byte>>? Message { add => _inner.Message += value; remove => _inner.Message -= value; }
        public event Action<TransportClosed>? Closed { add => _inner.Closed += value; remove => _inner.Closed -= value; }
        public Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken ct) => _inner.ConnectAsync(url, options, ct);

        public Task SendAsync(ArraySegment<byte> message, CancellationToken ct)
        {
            Record(true, message);
            return _inner.SendAsync(message, ct);
        }

        public Task CloseAsync(int code, string reason, CancellationToken ct) => _inner.CloseAsync(code, reason, ct);
        public void Abort() => _inner.Abort();
        public void Dispose() => _inner.Dispose();
    }

    readonly List<(bool Up, object?[] Msg)> _wire = new();

    Task<VolleyClient> Connect(Action<VolleyClient>? register = null, Action<VolleyClientOptions>? tweak = null) =>
        VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: o => { o.Transport = () => new Tap(_wire); tweak?.Invoke(o); }), register);

    (bool Up, object?[] Msg)[] Wire()
    {
        lock (_wire) return _wire.ToArray();
    }

    static bool IsRequest(object?[] m, string method) => m.Length == 4 && Equals(m[0], 0L) && Equals(m[2], method);
    static object?[] Params(object?[] m) => (object?[])m[3]!;

    /// <summary>The client's stream items on the wire, in order: each request's values (one for an $item).</summary>
    static List<object?[]> SentItems((bool Up, object?[] Msg)[] wire) =>
        wire.Where(x => x.Up && (IsRequest(x.Msg, "$item") || IsRequest(x.Msg, "$items")))
            .Select(x => IsRequest(x.Msg, "$items") ? (object?[])Params(x.Msg)[1]! : new[] { Params(x.Msg)[1] }).ToList();

    /// <summary>The most items of the client's $item and $items requests unanswered at once (the credit counts items).</summary>
    static int MostUnanswered((bool Up, object?[] Msg)[] wire)
    {
        var open = new Dictionary<long, int>();
        var most = 0;
        foreach (var (up, m) in wire)
        {
            if (up && IsRequest(m, "$items")) open[(long)m[1]!] = ((object?[])Params(m)[1]!).Length;
            else if (up && IsRequest(m, "$item")) open[(long)m[1]!] = 1;
            else if (!up && m.Length == 4 && Equals(m[0], 1L)) open.Remove((long)m[1]!);
            most = Math.Max(most, open.Values.Sum());
        }
        return most;
    }

    static async IAsyncEnumerable<object?> Yields(IEnumerable<object?> values, int yieldEvery = 0, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var i = 0;
        foreach (var v in values)
        {
            if (yieldEvery > 0 && ++i % yieldEvery == 0) await Task.Yield();
            yield return v;
        }
    }

    static async IAsyncEnumerable<long> UpTo(long n)
    {
        for (long i = 1; i <= n; i++)
        {
            if (i % 40 == 0) await Task.Yield();
            yield return i;
        }
    }

    [Fact]
    public async Task The_client_names_items_after_its_ack_and_reads_batches_answering_each_once()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var got = new List<long>();
        await foreach (var x in c.StreamAsync<long>("countTo", 50L)) got.Add(x);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), got);
        var wire = Wire();
        var up = wire.Where(x => x.Up).Select(x => x.Msg).ToArray();
        Assert.Equal("$ack", up[0][1]);
        Assert.Equal(new object?[] { 2L, "$features", new object?[] { new object?[] { "items" } } }, up[1]);
        Assert.Single(up, m => Equals(m[1], "$features"));
        var batches = wire.Where(x => !x.Up && IsRequest(x.Msg, "$items")).Select(x => x.Msg).ToArray();
        Assert.NotEmpty(batches);
        foreach (var b in batches)
        {
            Assert.InRange(((object?[])Params(b)[1]!).Length, 2, 16);
            Assert.Equal(new object?[] { 1L, b[1], null, null }, Assert.Single(up, m => Equals(m[0], 1L) && Equals(m[1], b[1])));
        }
    }

    [Fact]
    public async Task A_batch_is_answered_only_once_all_its_values_were_taken()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("k");
        async Task<int> Answered() => ((object?[]?)await c.CallAsync<object?>("itemOutcomes", key))?.Length ?? 0;
        // handItems sends $items [1, 2, 3], waits for its answer, then $items [4].
        var e = c.StreamAsync<object?>("handItems", new object?[] { new object?[] { 1L, 2L, 3L }, new object?[] { 4L } }, key).GetAsyncEnumerator();
        try
        {
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(1L, e.Current);
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(2L, e.Current);
            await Task.Delay(200);
            Assert.Equal(0, await Answered()); // two of three taken: no credit yet
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(3L, e.Current);
            Assert.True(await T.UntilAsync(async () => await Answered() == 1), "the batch was not answered once taken");
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(4L, e.Current); // one value: answered when taken, as an $item
            Assert.True(await e.MoveNextAsync());
            var answers = new object?[] { new Dictionary<string, object?> { ["value"] = null }, new Dictionary<string, object?> { ["value"] = null } };
            Assert.True(Kit.Same(answers, e.Current), $"the server saw {Kit.Show(e.Current)}");
            Assert.False(await e.MoveNextAsync());
        }
        finally
        {
            await e.DisposeAsync();
        }

        // A reader that stops after one of three refuses the rest of the batch: CANCELLED, once.
        var key2 = T.Uid("k");
        await foreach (var x in c.StreamAsync<long>("handItems", new object?[] { new object?[] { 1L, 2L, 3L } }, key2))
        {
            Assert.Equal(1L, x);
            break;
        }
        object?[]? outcomes = null;
        Assert.True(await T.UntilAsync(async () => (outcomes = await c.CallAsync<object?[]?>("itemOutcomes", key2))?.Length == 1), "the batch was never answered");
        Assert.Equal(ErrorCodes.Cancelled, ((Dictionary<string, object?>)outcomes![0]!)["code"]);
    }

    [Fact]
    public async Task An_items_request_out_of_shape_or_for_no_reader_is_refused_and_the_session_stays()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var cases = new (object?[] Params, string Code)[]
        {
            (new object?[] { 1L }, ErrorCodes.InvalidParams),                                    // no values
            (new object?[] { 1L, 7L }, ErrorCodes.InvalidParams),                                // values not a list
            (new object?[] { 1L, Array.Empty<object?>() }, ErrorCodes.InvalidParams),            // none
            (new object?[] { 1L, Enumerable.Repeat<object?>(0L, 17).ToArray() }, ErrorCodes.InvalidParams), // past the window
            (new object?[] { 1L, new object?[] { 1L }, 2L }, ErrorCodes.InvalidParams),          // a third param
            (new object?[] { 999_999L, new object?[] { 1L, 2L } }, ErrorCodes.Cancelled),        // a stream nobody reads
            (new object?[] { "x", new object?[] { 1L, 2L } }, ErrorCodes.Cancelled),             // not a stream id
        };
        foreach (var (p, code) in cases)
        {
            var o = await c.CallAsync<Dictionary<string, object?>>("itemsToMe", new object?[] { p });
            Assert.True(Equals(o.GetValueOrDefault("code"), code), $"$items {Kit.Show(p)}: {Kit.Show(o)}, want {code}");
        }
        Assert.Equal(1L, await c.CallAsync<long>("echo", 1L));
    }

    [Fact]
    public async Task A_client_stream_and_an_upload_go_as_batches_within_the_window_of_16_items()
    {
        await using var _ = new Closer(await Connect(c => c.HandleStream<long, object?>("values", (n, ct) => Yields(Enumerable.Range(1, (int)n).Select(i => (object?)(long)i), 50, ct))));
        var c = _.Client;
        var read = await c.CallAsync<Dictionary<string, object?>>("readMine", "values", new object?[] { 300L });
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (object?)(long)i), (object?[])read["items"]!);
        var wire = Wire();
        var sent = SentItems(wire);
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (object?)(long)i), sent.SelectMany(x => x));
        // Yielded without suspending: mostly full batches (a Task.Yield every 50 ends one early).
        Assert.True(sent.Count < 40, $"{sent.Count} requests for 300 items");
        Assert.All(wire.Where(x => x.Up && IsRequest(x.Msg, "$items")), x => Assert.InRange(((object?[])Params(x.Msg)[1]!).Length, 2, 16));
        Assert.InRange(MostUnanswered(wire), 1, 16);

        // An upload, through the same producer.
        lock (_wire) _wire.Clear();
        var up = await c.CallAsync<Dictionary<string, object?>>("readUpload", UpTo(200));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (object?)(long)i), (object?[])up["items"]!);
        wire = Wire();
        Assert.Contains(wire, x => x.Up && IsRequest(x.Msg, "$items"));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (object?)(long)i), SentItems(wire).SelectMany(x => x));
        Assert.InRange(MostUnanswered(wire), 1, 16);
    }

    [Fact]
    public async Task A_batch_past_the_server_limits_goes_one_item_each_and_the_stream_batches_no_more()
    {
        // Four 300 KB strings: 1.2 MB together, past the server's 1 MiB; then small ones. Four
        // lists of 30,000 values: 120,000 together, past its 100,000 values.
        var big = new string('x', 300_000);
        var list = Enumerable.Repeat<object?>(1L, 30_000).ToArray();
        await using var _ = new Closer(await Connect(c =>
        {
            // A Task.Yield before the fifth: the large four are one batch, what follows another.
            c.HandleStream<object?>("big", ct => Yields(Enumerable.Repeat<object?>(big, 4).Concat(Enumerable.Range(1, 10).Select(i => (object?)(long)i)), 5, ct));
            c.HandleStream<object?>("wide", ct => Yields(Enumerable.Repeat<object?>(list, 4).Append(5L).Append(6L), 5, ct));
        }));
        var c = _.Client;
        var sizes = await c.CallAsync<object?[]>("measureMine", "big", Array.Empty<object?>());
        Assert.Equal(new object?[] { 300_000L, 300_000L, 300_000L, 300_000L }.Concat(Enumerable.Range(1, 10).Select(i => (object?)(long)i)), sizes);
        var wire = Wire();
        Assert.DoesNotContain(wire, x => x.Up && IsRequest(x.Msg, "$items"));
        Assert.Equal(14, SentItems(wire).Count);

        lock (_wire) _wire.Clear();
        sizes = await c.CallAsync<object?[]>("measureMine", "wide", Array.Empty<object?>());
        Assert.Equal(new object?[] { 30_000L, 30_000L, 30_000L, 30_000L, 5L, 6L }, sizes);
        wire = Wire();
        Assert.DoesNotContain(wire, x => x.Up && IsRequest(x.Msg, "$items"));
        Assert.Equal(6, SentItems(wire).Count);
    }
}
