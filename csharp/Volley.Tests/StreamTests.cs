// Streams both ways (SPEC §12) against a real Volley server (Node, today's server/): the
// server's generators read with await foreach, the client's HandleStream read by the server,
// the credit window (a slow reader slows the producer), early stops ($cancel, the other
// side's generator stops), errors with their codes, cuts mid-stream, and items counted
// toward MaxIncomingPending while they wait.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;
using Xunit;

namespace Volley.Tests;

public class StreamTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public StreamTests(OwnServerFixture f) => _server = f.Server;

    Task<VolleyClient> Connect(Action<VolleyClient>? register = null, Action<VolleyClientOptions>? tweak = null) =>
        VolleyClient.ConnectAsync(_server.Url, T.Opts(tweak: tweak), register);

    static async Task<List<T>> ReadAll<T>(IAsyncEnumerable<T> items)
    {
        var got = new List<T>();
        await foreach (var x in items) got.Add(x);
        return got;
    }

    static long[] Range(long from, int count) => Enumerable.Range(0, count).Select(i => from + i).ToArray();

    static object?[] Items(Dictionary<string, object?> answer) => (object?[])answer["items"]!;

    /// <summary>The server's countTo(…, key) stopped before its end (its finally ran) within 2 s.</summary>
    static async Task<bool> Stops(VolleyClient c, string key)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await c.CallAsync<long>("cancelled", key) == 1) return true;
            await Task.Delay(20);
        }
        return false;
    }

    [Fact]
    public async Task Reads_a_server_stream_in_order_to_its_end()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        Assert.Equal(Range(0, 300), await ReadAll(c.StreamAsync<long>("countTo", 300L)));
        // The object form, and an empty stream.
        Assert.Equal(new object?[] { 0L, 1L, 2L }, await ReadAll(c.StreamAsync("countTo", 3L)));
        Assert.Empty(await ReadAll(c.StreamAsync<long>("countTo", 0L)));
        Assert.Equal(7L, await c.CallAsync<long>("echo", 7L));
    }

    [Fact]
    public async Task A_slow_reader_slows_the_producer_and_stopping_early_stops_it()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("k");
        var got = new List<long>();
        long producedWhileReading = 0;
        await foreach (var x in c.StreamAsync<long>("countTo", 1_000_000L, key))
        {
            got.Add(x);
            if (got.Count == 40)
            {
                producedWhileReading = await c.CallAsync<long>("produced", key);
                break;
            }
            await Task.Delay(10);
        }
        Assert.Equal(Range(0, 40), got);
        // The credit: an item is answered when taken, so the producer runs at most the window
        // (+1 made and waiting for credit) ahead of the reader.
        Assert.InRange(producedWhileReading, 40, 40 + VolleyClient.StreamWindow + 1);
        // break → DisposeAsync → $cancel: the server's generator stops (its finally runs).
        Assert.True(await Stops(c, key), "the server's generator did not stop");
        Assert.InRange(await c.CallAsync<long>("produced", key), 40, 40 + VolleyClient.StreamWindow + 1);
    }

    [Fact]
    public async Task Stopping_early_sends_cancel_so_a_producer_waiting_between_items_stops_at_once()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("k");
        // The server's generator waits a minute after its first item: only $cancel (its abort
        // signal) ends that wait within the 2 s allowed.
        await foreach (var x in c.StreamAsync<long>("slowCount", 10L, 60_000L, key))
        {
            Assert.Equal(0L, x);
            break;
        }
        Assert.True(await Stops(c, key), "the server's generator did not stop (no $cancel?)");
    }

    [Fact]
    public async Task A_cancelled_token_stops_the_stream_with_CANCELLED()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var key = T.Uid("k");
        using var cts = new CancellationTokenSource();
        var got = new List<long>();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(async () =>
        {
            await foreach (var x in c.StreamAsync<long>("countTo", new object?[] { 1_000_000L, key }, cts.Token))
            {
                got.Add(x);
                if (got.Count == 5) cts.Cancel();
            }
        });
        Assert.Equal(ErrorCodes.Cancelled, e.Code);
        Assert.Equal(Range(0, 5), got);
        Assert.True(await Stops(c, key), "the server's generator did not stop");
        Assert.Equal(1L, await c.CallAsync<long>("echo", 1L));
    }

    [Fact]
    public async Task A_failing_stream_gives_its_items_then_its_code()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var got = new List<long>();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(async () =>
        {
            await foreach (var x in c.StreamAsync<long>("failAfter", 2L, "GAME_OVER")) got.Add(x);
        });
        Assert.Equal("GAME_OVER", e.Code);
        Assert.Equal(Range(0, 2), got);
        // A plain call of a streaming method: nobody reads its items, the client answers them
        // CANCELLED and the call ends so; the session stays.
        Assert.Equal(ErrorCodes.Cancelled, (await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync<object?>("countTo", 3L))).Code);
        Assert.Equal(1L, await c.CallAsync<long>("echo", 1L));
    }

    static async IAsyncEnumerable<long> Count(long n, Action<long>? made = null, Action? stopped = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        long i = 1;
        try
        {
            for (; i <= n; i++)
            {
                if (i % 50 == 0) await Task.Yield();
                made?.Invoke(i);
                yield return i;
            }
        }
        finally
        {
            if (i <= n) stopped?.Invoke();
        }
    }

    [Fact]
    public async Task The_server_reads_a_client_stream()
    {
        await using var _ = new Closer(await Connect(c => c.HandleStream<long, long>("numbers", (n, ct) => Count(n, ct: ct))));
        var c = _.Client;
        var answer = await c.CallAsync<Dictionary<string, object?>>("readMine", "numbers", new object?[] { 500L });
        Assert.False(answer.ContainsKey("code"), $"failed: {(answer.TryGetValue("message", out var m) ? m : "")}");
        Assert.Equal(Range(1, 500).Cast<object?>(), Items(answer));
        // A stream of a reference type, through HandleCall (IAsyncEnumerable<string> is one of object).
        c.HandleCall("words", _ => Task.FromResult<object?>(Words()));
        Assert.Equal(new object?[] { "a", "b" }, Items(await c.CallAsync<Dictionary<string, object?>>("readMine", "words", Array.Empty<object?>())));
    }

    static async IAsyncEnumerable<string> Words()
    {
        await Task.Yield();
        yield return "a";
        yield return "b";
    }

    [Fact]
    public async Task A_slow_server_reader_slows_the_client_producer_and_its_stop_disposes_the_enumerator()
    {
        long made = 0;
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = new Closer(await Connect(c => c.HandleStream<long, long>("numbers",
            (n, ct) => Count(n, i => Interlocked.Exchange(ref made, i), () => stopped.TrySetResult(), ct))));
        var c = _.Client;
        // The server takes 30 items, 10 ms apart, then breaks ($cancel).
        var answer = await c.CallAsync<Dictionary<string, object?>>("readMine", "numbers", new object?[] { 1_000_000L }, 30L, 10L);
        Assert.Equal(Range(1, 30).Cast<object?>(), Items(answer));
        Assert.InRange(Interlocked.Read(ref made), 30, 30 + VolleyClient.StreamWindow + 1);
        Assert.True(await Task.WhenAny(stopped.Task, Task.Delay(2000)) == stopped.Task, "the client's enumerator was not disposed");
        Assert.InRange(Interlocked.Read(ref made), 30, 30 + VolleyClient.StreamWindow + 1);
        Assert.Equal(1L, await c.CallAsync<long>("echo", 1L));
    }

    [Fact]
    public async Task A_client_stream_that_throws_ends_with_its_code_after_its_items()
    {
        var errors = new List<Exception>();
        await using var _ = new Closer(await Connect(c =>
        {
            c.HandleStream<string, long>("failing", (how, ct) => Failing(how));
            c.HandleStream<long, long>("numbers", (n, ct) => Count(n, ct: ct));
        }, o => o.OnHandlerError = (e, _) => { lock (errors) errors.Add(e); }));
        var c = _.Client;
        var coded = await c.CallAsync<Dictionary<string, object?>>("readMine", "failing", new object?[] { "coded" });
        Assert.Equal("GAME_OVER", coded["code"]);
        Assert.Equal(new object?[] { 1L, 2L }, Items(coded));
        // Anything else: INTERNAL to the server (no detail), the exception to OnHandlerError.
        var other = await c.CallAsync<Dictionary<string, object?>>("readMine", "failing", new object?[] { "other" });
        Assert.Equal(ErrorCodes.Internal, other["code"]);
        Assert.Equal(new object?[] { 1L, 2L }, Items(other));
        Assert.DoesNotContain("client secret", (string)other["message"]!);
        Assert.True(await T.Until(() => { lock (errors) return errors.Any(e => e.Message == "client secret"); }, 2000));
        // Bad params: INVALID_PARAMS, as for any handler.
        var bad = await c.CallAsync<Dictionary<string, object?>>("readMine", "numbers", new object?[] { "x" });
        Assert.Equal(ErrorCodes.InvalidParams, bad["code"]);
    }

    static async IAsyncEnumerable<long> Failing(string how)
    {
        await Task.Yield();
        yield return 1;
        yield return 2;
        if (how == "coded") throw new VolleyRpcException("GAME_OVER", "the stream failed");
        throw new InvalidOperationException("client secret");
    }

    [Fact]
    public async Task Streams_survive_a_cut_both_ways_every_item_once_in_order()
    {
        VolleyClient? me = null;
        var dropAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = new Closer(await Connect(c =>
        {
            me = c;
            c.HandleStream<long, long>("numbers", (n, ct) => Count(n, i => { if (i == 700) dropAt.TrySetResult(); }, ct: ct));
        }));
        var c = _.Client;
        var resumed = new List<bool>();
        c.SessionOpened += r => { lock (resumed) resumed.Add(r); };

        // Server → client: cut after item 500.
        var got = new List<long>();
        await foreach (var x in c.StreamAsync<long>("countTo", 2000L))
        {
            got.Add(x);
            if (got.Count == 500) c.Drop();
        }
        Assert.Equal(Range(0, 2000), got);

        // Client → server: cut once the client made item 700.
        var reading = c.CallAsync<Dictionary<string, object?>>("readMine", new object?[] { "numbers", new object?[] { 2000L } }, TimeSpan.FromSeconds(20));
        await dropAt.Task.WaitAsync(TimeSpan.FromSeconds(10));
        c.Drop();
        var answer = await reading;
        Assert.False(answer.ContainsKey("code"), $"failed: {(answer.TryGetValue("message", out var m) ? m : "")}");
        Assert.Equal(Range(1, 2000).Cast<object?>(), Items(answer));
        Assert.True(await T.Until(() => { lock (resumed) return resumed.Count == 2; }, 3000));
        lock (resumed) Assert.All(resumed, Assert.True);
    }

    [Fact]
    public async Task Items_waiting_to_be_taken_count_toward_MaxIncomingPending()
    {
        // Two streams, nobody reading: 16 items each would be held, but only 20 may wait. The
        // bound counts requests (an `$items` is one, as in the TypeScript engine): slowCount
        // yields one item per event-loop turn, so each comes as an `$item` of its own.
        await using var _ = new Closer(await Connect(tweak: o => o.ReceiveLimits.MaxIncomingPending = 20));
        var c = _.Client;
        var (ka, kb) = (T.Uid("k"), T.Uid("k"));
        var a = c.StreamAsync<long>("slowCount", 100L, 1L, ka).GetAsyncEnumerator();
        var b = c.StreamAsync<long>("slowCount", 100L, 1L, kb).GetAsyncEnumerator();
        // Nothing is read until the 21st item was refused: its generator stopped early.
        var refused = false;
        for (var i = 0; i < 250 && !refused; i++)
        {
            refused = await c.CallAsync<long>("cancelled", ka) + await c.CallAsync<long>("cancelled", kb) > 0;
            if (!refused) await Task.Delay(20);
        }
        Assert.True(refused, "no item refused in 5 s");
        async Task<(int items, string? code)> Drain(IAsyncEnumerator<long> e)
        {
            var n = 0;
            try
            {
                while (await e.MoveNextAsync()) n++;
                return (n, null);
            }
            catch (VolleyRpcException x)
            {
                return (n, x.Code);
            }
            finally
            {
                await e.DisposeAsync();
            }
        }
        var ra = await Drain(a);
        var rb = await Drain(b);
        // The items past the bound were refused OVERLOADED, which ends their stream so.
        Assert.True(ra.code == ErrorCodes.Overloaded || rb.code == ErrorCodes.Overloaded, $"a: {ra}, b: {rb}");
        // Each stream either read to its end, or got what was taken in before the bound.
        foreach (var r in new[] { ra, rb })
            Assert.True(r == (100, null) || (r.code == ErrorCodes.Overloaded && r.items <= 20), $"a: {ra}, b: {rb}");
        Assert.Equal(1L, await c.CallAsync<long>("echo", 1L));
        // Reading as they come, one stream at a time, stays within it.
        Assert.Equal(Range(0, 100), await ReadAll(c.StreamAsync<long>("countTo", 100L)));
    }
}
