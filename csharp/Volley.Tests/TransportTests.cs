// The client over a transport other than the default, against a real server: one that
// behaves as WebGLTransport does (it can read no HTTP status and send no header), wrapping
// ClientWebSocketTransport. So the client side of the WebGL path runs here: the `volley`
// sub-protocol offer, refusals as close codes, the header token as a sub-protocol, a
// transport per attempt through a reconnect.

using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Transport;
using Xunit;

namespace Volley.Tests;

public class TransportTests : IClassFixture<OwnServerFixture>
{
    readonly NodeServer _server;
    public TransportTests(OwnServerFixture f) => _server = f.Server;

    sealed class BrowserLike : IVolleyTransport
    {
        readonly ClientWebSocketTransport _inner = new ClientWebSocketTransport();
        public readonly List<string> Offered = new List<string>();
        public int Messages;

        public BrowserLike() => _inner.Message += _ => Interlocked.Increment(ref Messages);
        public bool ReadsHttpStatus => false;
        public event Action<ArraySegment<byte>>? Message { add => _inner.Message += value; remove => _inner.Message -= value; }
        public event Action<TransportClosed>? Closed { add => _inner.Closed += value; remove => _inner.Closed -= value; }

        public Task ConnectAsync(Uri url, TransportConnectOptions options, CancellationToken cancellationToken)
        {
            if (options.Headers.Count > 0) throw new InvalidOperationException("a browser cannot send headers");
            Offered.AddRange(options.Subprotocols);
            return _inner.ConnectAsync(url, options, cancellationToken);
        }

        public Task SendAsync(ArraySegment<byte> message, CancellationToken cancellationToken) => _inner.SendAsync(message, cancellationToken);
        public Task CloseAsync(int code, string reason, CancellationToken cancellationToken) => _inner.CloseAsync(code, reason, cancellationToken);
        public void Abort() => _inner.Abort();
        public void Dispose() => _inner.Dispose();
    }

    [Fact]
    public async Task Where_no_HTTP_status_can_be_read_a_refused_login_is_REFUSED_with_close_4401()
    {
        var made = new List<BrowserLike>();
        var e = await Assert.ThrowsAsync<VolleyRpcException>(() => VolleyClient.ConnectAsync(_server.Url,
            T.Opts("bad token!", o => o.Transport = () => { var t = new BrowserLike(); made.Add(t); return t; })));
        Assert.Equal(ErrorCodes.Refused, e.Code);
        Assert.Equal(4401L, ((Dictionary<string, object?>)e.ErrorData!)["closeCode"]);
        Assert.Equal(new[] { "volley" }, Assert.Single(made).Offered);
    }

    [Fact]
    public async Task A_header_token_goes_as_the_volley_token_subprotocol_and_calls_flow_through_the_transport()
    {
        var uid = T.Uid();
        var made = new List<BrowserLike>();
        var c = await VolleyClient.ConnectAsync(_server.Url, T.Opts(uid, o =>
        {
            o.TokenIn = TokenTransport.Header;
            o.Transport = () => { var t = new BrowserLike(); lock (made) made.Add(t); return t; };
        }));
        try
        {
            Assert.Equal(uid, (await c.CallAsync<Dictionary<string, object?>>("whoami"))["uid"]);
            Assert.Equal(new[] { "volley", "volley.token." + uid }, made[0].Offered);
            var big = new string('x', 300_000);
            Assert.Equal(big, await c.CallAsync<string>("echo", big));
            Assert.True(made[0].Messages >= 3, $"{made[0].Messages} messages through the transport");

            // A cut: the client resumes on a new transport from the same factory.
            var resumed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.SessionOpened += r => { if (r) resumed.TrySetResult(true); };
            c.Drop();
            Assert.Same(resumed.Task, await Task.WhenAny(resumed.Task, Task.Delay(10_000)));
            Assert.Equal(2, made.Count);
            Assert.Equal(42L, await c.CallAsync<long>("add", 40, 2));
        }
        finally
        {
            await c.CloseAsync();
        }
    }
}
