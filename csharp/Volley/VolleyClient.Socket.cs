// Socket lifecycle: dial (token in query, header or sub-protocol, ?sid= to resume), connect
// timeout, refused logins told apart from unreachable servers, the send loop (batching
// messages into frames), what the transport receives, heartbeats, reconnect with backoff,
// and the final close. The socket itself is an IVolleyTransport (Transport/).

#nullable enable
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Volley.Transport;
using Volley.Wire;

namespace Volley
{
    public sealed partial class VolleyClient
    {
        /// <summary>One WebSocket and what belongs to it alone.</summary>
        internal sealed class SocketState
        {
            public IVolleyTransport? Transport;
            /// <summary>Set when this socket's messages are no longer read (it closed, or the client stopped reading it).</summary>
            public readonly TaskCompletionSource<bool> ReceiveEnded = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            public readonly CancellationTokenSource Cts = new CancellationTokenSource();
            public readonly SendSignal Signal = new SendSignal();
            public readonly TaskCompletionSource<bool> Finished = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            public readonly Stopwatch SinceReceive = Stopwatch.StartNew();
            public List<byte[]> Outbox = new List<byte[]>();
            /// <summary>The list the send loop is writing out; swapped with Outbox (no list per batch).</summary>
            public List<byte[]> Sending = new List<byte[]>();
            public bool Signaled;
            /// <summary><c>$session</c> arrived on this socket.</summary>
            public bool SessionSeen;
            /// <summary>Reliable messages may flow (first socket of a session, or the peer's first <c>$ack</c> came).</summary>
            public bool Synced;
            /// <summary>Highest sequence number written on this socket.</summary>
            public long WrittenSeq;
            public bool ConnectTimedOut;
            public IVolleyTimer? ConnectTimer;
            public IVolleyTimer? Heartbeat;
            /// <summary>Cuts the socket a second after a heartbeat timeout's close frame.</summary>
            public IVolleyTimer? AbortTimer;
            public (int code, string reason)? CloseRequested;

            public void StopTimers()
            {
                ConnectTimer?.Dispose();
                Heartbeat?.Dispose();
            }

            /// <summary>Ends the send loop, unless it still has a close frame to send.</summary>
            public void Stop(bool abort)
            {
                StopTimers();
                bool closing;
                lock (this) closing = CloseRequested != null;
                if (abort || !closing)
                {
                    try { Cts.Cancel(); } catch (ObjectDisposedException) { }
                }
                if (abort) Transport?.Abort();
            }

            public void CloseGracefully(int code, string reason)
            {
                lock (this) CloseRequested = (code, reason);
                Signal.Release();
            }
        }

        SocketState? _socket;

        void Dial()
        {
            SocketState s;
            Uri uri;
            lock (_lock)
            {
                if (_closing) return;
                s = new SocketState();
                _socket = s;
                var query = new List<string>();
                var existing = _url.Query.TrimStart('?');
                if (existing.Length > 0) query.Add(existing);
                if (_opts.Token != null && _opts.TokenIn == TokenTransport.Query) query.Add("token=" + Uri.EscapeDataString(_opts.Token));
                if (_session != null) query.Add("sid=" + Uri.EscapeDataString(_session.Sid));
                var b = new UriBuilder(_url) { Query = string.Join("&", query) };
                uri = b.Uri;
                s.ConnectTimer = _scheduler.Schedule(_opts.ConnectTimeout, () => OnConnectTimeout(s));
            }
            _ = RunSocketAsync(s, uri);
        }

        /// <summary>The transport of a new socket: the app's, else the platform's default.</summary>
        IVolleyTransport NewTransport()
        {
            if (_opts.Transport != null) return _opts.Transport();
#if UNITY_WEBGL && !UNITY_EDITOR
            return new WebGLTransport();
#else
            return new ClientWebSocketTransport(_opts.ConfigureSocket, _scheduler);
#endif
        }

        async Task RunSocketAsync(SocketState s, Uri uri)
        {
            IVolleyTransport t;
            try
            {
                t = NewTransport();
            }
            catch (Exception e)
            {
                OnConnectFailed(s, e);
                s.Finished.TrySetResult(true);
                return;
            }
            s.Transport = t;
            t.Message += m => OnTransportMessage(s, m);
            t.Closed += c => OnTransportClosed(s, c);
            try
            {
                var o = new TransportConnectOptions { MaxMessageBytes = _opts.ReceiveLimits.MaxMessageBytes };
                var headers = new Dictionary<string, string>();
                var protocols = new List<string>();
                // Where the HTTP status of a refused upgrade can't be read (browsers), offer
                // `volley`: refusals then come as close codes 4401/4409/4503 (SPEC §1), and a
                // header token goes as the `volley.token.<token>` sub-protocol.
                if (!t.ReadsHttpStatus) protocols.Add("volley");
                if (_opts.Token != null && _opts.TokenIn == TokenTransport.Header)
                {
                    if (t.ReadsHttpStatus) headers["Authorization"] = "Bearer " + _opts.Token;
                    else protocols.Add("volley.token." + _opts.Token);
                }
                o.Headers = headers;
                o.Subprotocols = protocols;
                await t.ConnectAsync(uri, o, s.Cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                OnConnectFailed(s, e);
                s.Finished.TrySetResult(true);
                t.Dispose();
                return;
            }
            var sending = SendLoopAsync(s, t);
            await s.ReceiveEnded.Task.ConfigureAwait(false);
            // The send loop ends with the socket (cancelled, failed, or after its close frame).
            await _scheduler.WithTimeout(sending, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            s.Finished.TrySetResult(true);
            t.Dispose();
        }

        static readonly Regex StatusInMessage = new Regex(@"status code '?(\d{3})", RegexOptions.CultureInvariant);

        /// <summary>
        /// The HTTP status of a refused upgrade. netstandard2.1 has no API for it, but .NET and
        /// Mono both put it in the WebSocketException's message ("The server returned status
        /// code '401' when status code '101' was expected").
        /// </summary>
        internal static int? RefusedStatus(Exception e)
        {
            for (var x = e; x != null; x = x.InnerException)
            {
                var m = StatusInMessage.Match(x.Message);
                if (m.Success && int.TryParse(m.Groups[1].Value, out var status) && status != 101) return status;
            }
            return null;
        }

        void OnConnectFailed(SocketState s, Exception e)
        {
            if (s.ConnectTimedOut) return; // already reported as a timeout
            var status = RefusedStatus(e);
            VolleyRpcException error;
            if (status == 401 || status == 403 || status == 409 || status == 503)
                error = new VolleyRpcException(ErrorCodes.Refused, $"the server refused the login (HTTP {status})", new Dictionary<string, object?> { ["status"] = (long)status });
            else
                error = new VolleyRpcException(ErrorCodes.Disconnected, $"could not connect to {_url}: {e.Message}", status == null ? null : new Dictionary<string, object?> { ["status"] = (long)status });
            Lost(s, new CloseInfo(CloseCodes.Abnormal, error.Message), abort: true, error);
        }

        void OnConnectTimeout(SocketState s)
        {
            lock (_lock)
            {
                if (s.SessionSeen || _socket != s) return;
                s.ConnectTimedOut = true;
            }
            var error = new VolleyRpcException(ErrorCodes.Disconnected, $"no session from {_url} within {_opts.ConnectTimeout.TotalMilliseconds:0} ms");
            Lost(s, new CloseInfo(CloseCodes.Abnormal, error.Message), abort: true, error);
        }

        async Task SendLoopAsync(SocketState s, IVolleyTransport ws)
        {
            var frame = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    await s.Signal.WaitAsync(s.Cts.Token).ConfigureAwait(false);
                    if (ShouldCoalesce(s)) await Task.Yield();
                    List<byte[]> batch;
                    int maxBytes, maxCount;
                    lock (_lock)
                    {
                        batch = s.Outbox;
                        s.Outbox = s.Sending;
                        s.Sending = batch;
                        s.Signaled = false;
                        maxBytes = _peerLimits.MaxMessageBytes;
                        maxCount = _peerLimits.MaxMessagesPerFrame;
                    }
                    // Messages written in the same instant go out in one WebSocket message, within
                    // the server's per-frame count and size.
                    var len = 0;
                    var count = 0;
                    foreach (var m in batch)
                    {
                        if (count > 0 && (len + m.Length > maxBytes || count >= maxCount))
                        {
                            await ws.SendAsync(new ArraySegment<byte>(frame, 0, len), s.Cts.Token).ConfigureAwait(false);
                            len = 0;
                            count = 0;
                        }
                        if (len + m.Length > frame.Length) Array.Resize(ref frame, Math.Max(frame.Length * 2, len + m.Length));
                        Buffer.BlockCopy(m, 0, frame, len, m.Length);
                        len += m.Length;
                        count++;
                    }
                    if (count > 0) await ws.SendAsync(new ArraySegment<byte>(frame, 0, len), s.Cts.Token).ConfigureAwait(false);
                    batch.Clear(); // the next swap hands it back to the writers
                    (int code, string reason)? close;
                    lock (s) close = s.CloseRequested;
                    if (close != null)
                    {
                        using var t = new CancellationTokenSource();
                        using var expire = _scheduler.Schedule(TimeSpan.FromSeconds(2), () => CancelQuietly(t));
                        await ws.CloseAsync(close.Value.code, close.Value.reason, t.Token).ConfigureAwait(false);
                        return;
                    }
                }
            }
            catch (Exception)
            {
                // The receive loop sees the same failure and reports it.
            }
        }

        static void CancelQuietly(CancellationTokenSource t)
        {
            try { t.Cancel(); } catch (ObjectDisposedException) { }
        }

        /// <summary>A whole binary message from the transport.</summary>
        void OnTransportMessage(SocketState s, ArraySegment<byte> m)
        {
            if (s.ReceiveEnded.Task.IsCompleted) return;
            var buf = m.Array!;
            if (m.Offset != 0)
            {
                buf = new byte[m.Count];
                Buffer.BlockCopy(m.Array!, m.Offset, buf, 0, m.Count);
            }
            if (!OnFrame(s, buf, m.Count)) s.ReceiveEnded.TrySetResult(true);
        }

        /// <summary>The transport's socket ended, or it saw the server break the protocol.</summary>
        void OnTransportClosed(SocketState s, TransportClosed c)
        {
            if (!s.ReceiveEnded.TrySetResult(true)) return;
            if (c.Violation != null)
            {
                ProtocolViolation(s, c.Code, c.Violation);
                return;
            }
            if (c.Error != null)
            {
                Lost(s, new CloseInfo(CloseCodes.Abnormal, c.Reason), abort: true);
                return;
            }
            VolleyRpcException? error = null;
            bool seen;
            lock (_lock) seen = s.SessionSeen;
            if (!seen && CloseCodes.IsRefusal(c.Code))
                error = new VolleyRpcException(ErrorCodes.Refused, $"the server refused the login (close {c.Code}{(c.Reason.Length > 0 ? ": " + c.Reason : "")})", new Dictionary<string, object?> { ["closeCode"] = (long)c.Code });
            Lost(s, new CloseInfo(c.Code, c.Reason), abort: false, error);
        }

        /// <summary>The server broke the protocol: close 4002 (or the given code), no blind reconnect.</summary>
        void ProtocolViolation(SocketState s, int code, string why)
        {
            s.CloseGracefully(code, why.Length > 120 ? why.Substring(0, 120) : why);
            Lost(s, new CloseInfo(code, why), abort: false, new VolleyRpcException(ErrorCodes.ProtocolError, why));
        }

        /// <summary>A socket ended (closed, failed, or declared dead). Reconnect or end for good.</summary>
        void Lost(SocketState s, CloseInfo info, bool abort, VolleyRpcException? error = null)
        {
            bool final;
            lock (_lock)
            {
                if (_socket != s) return;
                _socket = null;
                s.StopTimers();
                _closeInfo = info;
                var neverOpened = _session == null && _state == ConnectionState.Connecting;
                // A 503 (shutting down) is worth retrying on a session we had; 401/409 are not.
                var retryableRefusal = error != null && error.Code == ErrorCodes.Refused
                    && error.ErrorData is Dictionary<string, object?> d
                    && ((d.TryGetValue("status", out var st) && st is long sv && sv == 503) || (d.TryGetValue("closeCode", out var cc) && cc is long cv && cv == CloseCodes.ShuttingDown));
                final = _closing || neverOpened || !_opts.Reconnect.Enabled || CloseCodes.IsFinal(info.Code)
                    || (error != null && error.Code == ErrorCodes.Refused && !retryableRefusal)
                    || (error != null && error.Code == ErrorCodes.ProtocolError);
                if (!final) ScheduleReconnect();
            }
            s.Stop(abort);
            Emit(() => SocketClosed?.Invoke(info));
            if (final) Final(info, error);
        }

        void ScheduleReconnect()
        {
            if (_attempt >= _opts.Reconnect.MaxAttempts)
            {
                var info = new CloseInfo(CloseCodes.Abnormal, "gave up reconnecting");
                _scheduler.Post(() => Final(info, null));
                return;
            }
            // The server keeps the session for resumeWindowMs; past that what was pending is lost.
            if (_session != null && _windowTimer == null && _session.ResumeWindowMs > 0)
                _windowTimer = _scheduler.Schedule(TimeSpan.FromMilliseconds(_session.ResumeWindowMs), ExpireSession);
            var delay = _opts.Reconnect.Delay(_attempt++, _random);
            var attempt = _attempt;
            SetState(ConnectionState.Reconnecting);
            Emit(() => Reconnecting?.Invoke(attempt, delay));
            _reconnectTimer ??= _scheduler.CreateTimer(Dial);
            _reconnectTimer.Change(delay);
        }

        void ExpireSession()
        {
            List<Action> after;
            lock (_lock)
            {
                _windowTimer?.Dispose();
                _windowTimer = null;
                if (_session == null || _socket?.SessionSeen == true) return;
                _session = null;
                after = ResetSession(new VolleyRpcException(ErrorCodes.Disconnected, "not reconnected within the resume window"));
            }
            foreach (var a in after) a();
        }

        /// <summary>The session is gone: pending calls fail, handlers abort, numbering restarts. Returns work to run outside the lock.</summary>
        List<Action> ResetSession(VolleyRpcException reason)
        {
            var after = new List<Action>();
            foreach (var call in _pending.Values)
            {
                call.GivenUp = true;
                call.DisposeTimers();
                var c = call;
                after.Add(() => c.Reject(reason));
            }
            _pending.Clear();
            foreach (var inc in _incoming.Values)
            {
                inc.Aborted = true;
                inc.Deadline?.Dispose();
                var c = inc;
                after.Add(() => c.Cts.Cancel());
            }
            _incoming.Clear();
            _kept.Reset();
            _owedCancels.Clear();
            _received = 0;
            _receivedAcked = 0;
            _bytesSinceAck = 0;
            return after;
        }

        void Final(CloseInfo info, VolleyRpcException? error)
        {
            List<Action> after;
            bool wasConnecting;
            SocketState? s;
            lock (_lock)
            {
                if (_state == ConnectionState.Closed) return;
                _closing = true;
                wasConnecting = _state == ConnectionState.Connecting;
                _reconnectTimer?.Dispose();
                _reconnectTimer = null;
                _windowTimer?.Dispose();
                _windowTimer = null;
                s = _socket;
                _socket = null;
                // Pending calls fail DISCONNECTED whatever ended the link; the first connect's
                // waiter gets the precise error (REFUSED, PROTOCOL_ERROR…).
                var closed = new VolleyRpcException(ErrorCodes.Disconnected, $"connection closed ({info.Code}{(info.Reason.Length > 0 ? ": " + info.Reason : "")})", new Dictionary<string, object?> { ["closeCode"] = (long)info.Code });
                error ??= closed;
                after = ResetSession(closed);
                SetState(ConnectionState.Closed);
            }
            // Close() asked for a graceful close: the send loop sends its frame; else cut.
            if (s != null) s.Stop(abort: s.CloseRequested == null);
            foreach (var a in after) a();
            if (wasConnecting) _opened.TrySetException(error);
        }

        void SetState(ConnectionState state)
        {
            if (_state == state) return;
            _state = state;
            Emit(() => StateChanged?.Invoke(state));
        }

        void StartHeartbeat(SocketState s, SessionInfo info)
        {
            var interval = _opts.Heartbeat ?? TimeSpan.FromMilliseconds(info.HeartbeatMs);
            if (interval <= TimeSpan.Zero) return;
            var timeout = _opts.HeartbeatTimeout ?? TimeSpan.FromMilliseconds(interval.TotalMilliseconds * 2.5);
            var period = TimeSpan.FromMilliseconds(Math.Min(interval.TotalMilliseconds, timeout.TotalMilliseconds / 2));
            // Assigned before it is armed: the tick re-arms it through s.Heartbeat.
            s.Heartbeat = _scheduler.CreateTimer(() =>
            {
                if (HeartbeatTick(s, timeout)) s.Heartbeat?.Change(period);
            });
            s.Heartbeat.Change(period);
        }

        /// <summary>True while the link lives (the next tick is due a period later).</summary>
        bool HeartbeatTick(SocketState s, TimeSpan timeout)
        {
            lock (_lock)
            {
                if (_socket != s || !s.SessionSeen) return false;
                // Liveness is judged on messages (browsers can't see WebSocket pings): the
                // server answers every $ping with $pong.
                if (s.SinceReceive.Elapsed <= timeout)
                {
                    if (_received != _receivedAcked) WriteAck();
                    WriteNow(MsgPackWriter.Encode(new object?[] { 2L, "$ping", Array.Empty<object?>() }));
                    return true;
                }
            }
            // Say 4008 if the uplink still works (a stalled downlink), then cut: the link is
            // not waited for.
            s.CloseGracefully(CloseCodes.HeartbeatTimeout, "no message within the heartbeat timeout");
            Lost(s, new CloseInfo(CloseCodes.HeartbeatTimeout, "no message within the heartbeat timeout"), abort: false);
            s.AbortTimer = _scheduler.Schedule(TimeSpan.FromSeconds(1), () => s.Stop(abort: true));
            return false;
        }

        // ---- writing ----------------------------------------------------------------------

        /// <summary>Queue bytes on the live socket (after <c>$session</c>); dropped when there is none.</summary>
        void WriteNow(byte[] bytes)
        {
            var s = _socket;
            if (s == null || !s.SessionSeen) return;
            s.Outbox.Add(bytes);
            if (!s.Signaled)
            {
                s.Signaled = true;
                s.Signal.Release();
            }
        }

        /// <summary>A request or response: numbered, kept until acknowledged, written when the socket is in sync.</summary>
        void SendReliable(byte[] bytes, PendingCall? call)
        {
            var m = _kept.Add(bytes, call);
            if (call != null) call.Seq = m.Seq;
            var s = _socket;
            if (s != null && s.Synced)
            {
                WriteNow(bytes);
                s.WrittenSeq = m.Seq;
            }
            if (_kept.Bytes > _opts.MaxUnackedBytes && s != null)
            {
                // Exactly-once can't be kept silently past the bound (DECISIONS B).
                CloseNotAcknowledging(s);
            }
        }

        void WriteAck()
        {
            _receivedAcked = _received;
            _bytesSinceAck = 0;
            WriteNow(MsgPackWriter.Encode(new object?[] { 2L, "$ack", new object?[] { _received } }));
        }
    }
}
