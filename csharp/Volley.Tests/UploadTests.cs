// Uploads (SPEC §12, "Uploads") against a real Volley server (Node, today's server/): an
// IAsyncEnumerable passed as an arg is read by the server's handler, under the credit window;
// the server stopping, the call's deadline, and a handler that never reads all end it; and the
// server's uploads reach a handler here as an UploadReader. The kit's cases 12.7–12.12 cover
// the wire (the $call shape, the credit, a cut, hostile $upload/$call).

using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Volley.Tests;

public class UploadTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public UploadTests(OwnServerFixture f) => _server = f.Server;

    Task<VolleyClient> Connect(Action<VolleyClient>? register = null) => VolleyClient.ConnectAsync(_server.Url, T.Opts(), register);

    /// <summary>1 … n, counting what it made and whether it started and was disposed.</summary>
    sealed class Source
    {
        public int Produced;
        public volatile bool Started, Disposed;

        public async IAsyncEnumerable<long> Items(long n, [EnumeratorCancellation] CancellationToken ct = default)
        {
            Started = true;
            try
            {
                for (long i = 1; i <= n; i++)
                {
                    if (i % 32 == 0) await Task.Yield();
                    Interlocked.Increment(ref Produced);
                    yield return i;
                }
            }
            finally
            {
                Disposed = true;
            }
        }
    }

    static async IAsyncEnumerable<string> Words()
    {
        foreach (var w in new[] { "rock", "paper", "scissors" })
        {
            await Task.Yield();
            yield return w;
        }
    }

    static async IAsyncEnumerable<short> Shorts()
    {
        for (short i = 1; i <= 3; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    static object?[] Items(object? answer) => (object?[])((Dictionary<string, object?>)answer!)["items"]!;

    [Fact]
    public async Task An_IAsyncEnumerable_arg_is_read_by_the_server_in_order()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var s = new Source();
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (object?)(long)i), Items(await c.CallAsync<object?>("readUpload", s.Items(300))));
        Assert.True(s.Disposed);
        // A reference type's items, and any other type through VolleyUpload.Of.
        Assert.Equal(new object?[] { "rock", "paper", "scissors" }, Items(await c.CallAsync<object?>("readUpload", Words())));
        Assert.Equal(new object?[] { 1L, 2L, 3L }, Items(await c.CallAsync<object?>("readUpload", VolleyUpload.Of(Shorts()))));
    }

    [Fact]
    public async Task A_slow_reader_holds_the_upload_to_the_window_and_stopping_early_disposes_it()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var s = new Source();
        var got = Items(await c.CallAsync<object?>("readUpload", s.Items(1_000_000), 40L, 5L));
        Assert.Equal(40, got.Length);
        Assert.True(await T.Until(() => s.Disposed, 2000), "the enumerator was disposed");
        Assert.True(s.Produced <= 40 + StreamWindowSlack, $"{s.Produced} produced for 40 read");
    }

    const int StreamWindowSlack = VolleyClient.StreamWindow + 2;

    [Fact]
    public async Task The_calls_deadline_ends_its_upload()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var s = new Source();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => c.CallAsync<object?>("readUpload", new object?[] { s.Items(1_000_000), 1L, 0L, 5000L }, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        Assert.True(await T.Until(() => s.Disposed, 2000), "the enumerator was disposed after the deadline");
        Assert.Equal(7L, await c.CallAsync<long>("echo", 7L));
    }

    [Fact]
    public async Task An_upload_nobody_reads_is_never_started()
    {
        await using var _ = new Closer(await Connect());
        var c = _.Client;
        var sources = Enumerable.Range(0, 50).Select(_ => new Source()).ToArray();
        foreach (var s in sources) Assert.Empty(Items(await c.CallAsync<object?>("readUpload", s.Items(10), -1L)));
        Assert.DoesNotContain(sources, s => s.Started);
    }

    [Fact]
    public async Task The_servers_upload_reaches_a_handler_raw_or_typed()
    {
        await using var _ = new Closer(await Connect(c =>
        {
            c.HandleCall("sink", async call =>
            {
                long sum = 0;
                await foreach (var x in call.Upload<long>(0)) sum += x;
                return sum;
            });
            c.Handle<IAsyncEnumerable<long>, long>("typedSink", async (xs, ct) =>
            {
                long n = 0;
                await foreach (var _ in xs.WithCancellation(ct)) n++;
                return n;
            });
        }));
        var c = _.Client;
        Assert.Equal(1275L, await c.CallAsync<long>("pushUpload", "sink", 50L));
        Assert.Equal(20L, await c.CallAsync<long>("pushUpload", "typedSink", 20L));
    }
}
