// Incoming messages: the envelope checks, `$` extensions ($session, $ack, $cancel, $pong),
// responses to our calls, and the server's calls to our handlers.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;

namespace Volley
{
    public sealed partial class VolleyClient
    {
        // Work a frame collects under the lock and runs after it, kept per thread for reuse: a
        // receive loop runs a frame start to end on one thread, with no await in between.
        [ThreadStatic] static List<Action>? t_after;
        [ThreadStatic] static List<Settlement>? t_settle;

        /// <summary>Handles one WebSocket message (one or more msgpack values). False: the socket is gone.</summary>
        bool OnFrame(SocketState s, byte[] buf, int len)
        {
            var after = t_after ?? new List<Action>();
            var settle = t_settle ?? new List<Settlement>();
            t_after = null; // taken while in use (nothing re-enters, but a nested frame would get its own)
            t_settle = null;
            string? violation = null;
            lock (_lock)
            {
                if (_socket != s) return false;
                s.SinceReceive.Restart();
                var pos = 0;
                var count = 0;
                while (pos < len && violation == null && _socket == s)
                {
                    if (++count > _opts.ReceiveLimits.MaxMessagesPerFrame)
                    {
                        violation = $"more than {_opts.ReceiveLimits.MaxMessagesPerFrame} messages in one frame";
                        break;
                    }
                    ScanResult scan;
                    object? msg;
                    try
                    {
                        scan = MsgPackReader.Scan(buf, pos, len);
                        if (scan.Invalid != null)
                        {
                            // Well-formed but holding a value the wire refuses: only this message
                            // is refused (DECISIONS A), the connection stays.
                            var bad = MsgPackReader.DecodeLenient(buf, pos, scan.End);
                            var badSize = scan.End - pos;
                            pos = scan.End;
                            violation = OnRefusedMessage(s, bad, scan.Invalid, badSize, after, settle);
                            continue;
                        }
                        if (s.SessionSeen && MsgPackReader.TryResponseHead(buf, pos, scan.End, out var rid, out var resultAt))
                        {
                            // [1, id, nil, result], the common message: only the result is decoded,
                            // and only when its call still waits.
                            var rsize = scan.End - pos;
                            CountReliable(rsize);
                            if (_pending.TryGetValue(rid, out var waiting))
                            {
                                TakeResponse(waiting);
                                settle.Add(OverLimits(scan) is VolleyRpcException over
                                    ? new Settlement { Call = waiting, Error = over }
                                    : new Settlement { Call = waiting, Result = MsgPackReader.Decode(buf, resultAt, scan.End, out _) });
                            }
                            pos = scan.End;
                            if (_received - _receivedAcked >= AckEvery || _bytesSinceAck >= AckEveryBytes) WriteAck();
                            continue;
                        }
                        msg = MsgPackReader.Decode(buf, pos, scan.End, out _);
                    }
                    catch (MsgPackDecodeException e)
                    {
                        violation = "not valid msgpack: " + e.Message;
                        break;
                    }
                    var size = scan.End - pos;
                    pos = scan.End;
                    violation = OnMessage(s, msg, scan, size, after, settle);
                }
            }
            // Results first (each call's own task), then the rest in arrival order.
            foreach (var r in settle)
            {
                if (r.Error != null) r.Call.Reject(r.Error);
                else r.Call.Resolve(r.Result); // catches what the app's converter throws
            }
            RunAll(after);
            settle.Clear();
            after.Clear();
            t_after = after;
            t_settle = settle;
            if (violation != null)
            {
                Log(VolleyLogLevel.Warning, $"the server broke the protocol, closing 4002: {violation}");
                ProtocolViolation(s, CloseCodes.ProtocolError, violation);
                return false;
            }
            lock (_lock) return _socket == s;
        }

        /// <summary>A response for a call that waits: it is no longer pending, and the server has everything up to its request.</summary>
        void TakeResponse(PendingCall call)
        {
            _pending.Remove(call.Id);
            call.DisposeTimers();
            _kept.Ack(call.Seq);
        }

        /// <summary>Past this client's depth or values limit: refused like a value §2 refuses (SPEC §8).</summary>
        VolleyRpcException? OverLimits(ScanResult scan)
        {
            var l = _opts.ReceiveLimits;
            if (scan.Depth - 1 <= l.MaxDepth && scan.Elements <= l.MaxElements) return null;
            return new VolleyRpcException(ErrorCodes.ProtocolError, $"response refused: nested {scan.Depth - 1} deep or {scan.Elements} values, past this client's limits");
        }

        /// <summary>One message, under the lock. Returns a protocol violation, or null.</summary>
        string? OnMessage(SocketState s, object? msg, ScanResult scan, int size, List<Action> after, List<Settlement> settle)
        {
            if (!(msg is object?[] a) || a.Length < 1 || !(a[0] is long kind)) return "a message is not [type, …]";
            // A type a later version adds (SPEC §11): ignored, not counted, whatever its length.
            if (kind < 0 || kind > 2) return null;
            if (a.Length < 3) return "a message is not [type, …]";
            if (!s.SessionSeen && !(kind == 2 && a[1] is string first && first == "$session")) return null; // nothing counts before $session
            switch (kind)
            {
                case 0:
                    if (a.Length != 4 || !(a[1] is long rid) || rid < 0 || rid > uint.MaxValue || !(a[2] is string method) || !(a[3] is object?[] args))
                        return "malformed request";
                    CountReliable(size);
                    OnRequest((uint)rid, method, args, scan, after);
                    break;
                case 1:
                    if (a.Length != 4 || !(a[1] is long id) || id < 0 || id > uint.MaxValue || !(a[2] == null || a[2] is Dictionary<string, object?>))
                        return "malformed response";
                    CountReliable(size);
                    if (_pending.TryGetValue((uint)id, out var call))
                    {
                        TakeResponse(call);
                        var err = a[2];
                        if (OverLimits(scan) is VolleyRpcException over) settle.Add(new Settlement { Call = call, Error = over });
                        else if (err != null) settle.Add(new Settlement { Call = call, Error = VolleyRpcException.FromWire(err) });
                        else settle.Add(new Settlement { Call = call, Result = a[3] });
                    }
                    // else: a call we gave up (deadline, cancel): dropped, still counted.
                    break;
                case 2:
                    if (a.Length != 3 || !(a[1] is string name) || !(a[2] is object?[] p)) return "malformed notification";
                    return OnNotification(s, name, p, after);
            }
            if (_received - _receivedAcked >= AckEvery || _bytesSinceAck >= AckEveryBytes) WriteAck();
            return null;
        }

        /// <summary>A message holding a refused value: a request is answered INVALID_PARAMS, a response fails its call, a notification is dropped.</summary>
        string? OnRefusedMessage(SocketState s, object? msg, string why, int size, List<Action> after, List<Settlement> settle)
        {
            if (!s.SessionSeen) return "a refused value before $session";
            Log(VolleyLogLevel.Warning, $"a message from the server refused (the connection stays): {why}");
            if (!(msg is object?[] a) || a.Length < 1 || !(a[0] is long kind)) return "a message is not [type, …]: " + why;
            // A notification, or a type a later version adds (SPEC §11): dropped, not counted.
            if (kind < 0 || kind >= 2) return null;
            if (a.Length != 4) return "a message is not [type, …]: " + why;
            if (a.Length != 4 || !(a[1] is long id) || id < 0 || id > uint.MaxValue) return "malformed message: " + why;
            CountReliable(size);
            // A request is answered INVALID_PARAMS; a response fails its call PROTOCOL_ERROR (SPEC §2, §3).
            if (kind == 0) ReplyError((uint)id, new VolleyRpcException(ErrorCodes.InvalidParams, why));
            else if (kind == 1 && _pending.TryGetValue((uint)id, out var call))
            {
                TakeResponse(call);
                settle.Add(new Settlement { Call = call, Error = new VolleyRpcException(ErrorCodes.ProtocolError, "response refused: " + why) });
            }
            if (_received - _receivedAcked >= AckEvery || _bytesSinceAck >= AckEveryBytes) WriteAck();
            return null;
        }

        /// <summary>Work collected under the lock, run after it: one failing never skips the rest.</summary>
        void RunAll(List<Action> after)
        {
            foreach (var a in after)
            {
                try { a(); }
                catch (Exception e) { ReportHandlerError(e, "receive"); }
            }
        }

        void CountReliable(int size)
        {
            _received++;
            _bytesSinceAck += size;
        }

        string? OnNotification(SocketState s, string method, object?[] p, List<Action> after)
        {
            switch (method)
            {
                case "$session":
                {
                    var info = SessionInfo.FromWire(p.Length > 0 ? p[0] : null);
                    if (info == null) return "malformed $session";
                    if (s.SessionSeen) return null;
                    OnSession(s, info, after);
                    return null;
                }
                case "$ack":
                {
                    if (p.Length < 1 || !(p[0] is long n) || n < 0) return "malformed $ack";
                    if (!_kept.Ack(n)) return $"$ack {n} but only {_kept.Sent} reliable messages were sent";
                    if (!s.Synced) Resync(s);
                    return null;
                }
                case "$cancel":
                {
                    if (p.Length >= 1 && p[0] is long id && id >= 0 && id <= uint.MaxValue && _incoming.TryGetValue((uint)id, out var call))
                    {
                        _incoming.Remove(call.Id);
                        call.Aborted = true;
                        call.Deadline?.Dispose();
                        after.Add(call.Cancel);
                    }
                    return null;
                }
                case "$pong":
                    return null;
            }
            if (method.Length > 0 && method[0] == '$') return null; // unknown extensions are ignored
            if (_notificationHandlers.TryGetValue(method, out var handler)) after.Add(Deliver(handler, method, p));
            return null;
        }

        /// <summary>A notification for the app's callback (its own method: the closure only when there is one).</summary>
        Action Deliver(Action<object?[]> handler, string method, object?[] p) => () => Post(() =>
        {
            try { handler(p); }
            catch (Exception e) { ReportHandlerError(e, method); }
        });

        void OnSession(SocketState s, SessionInfo info, List<Action> after)
        {
            s.SessionSeen = true;
            s.ConnectTimer?.Dispose();
            var resumed = info.Resumed && _session != null && _session.Sid == info.Sid;
            if (!resumed && _session != null)
                after.AddRange(ResetSession(new VolleyRpcException(ErrorCodes.Disconnected, "the session expired before the reconnect")));
            _session = info;
            _peerLimits = info.Limits;
            // Named once per session (fresh socket), listed on every socket: a resume on an older
            // node may not take `$items` (SPEC §11), so the client sends them only while both hold.
            var items = Array.IndexOf(info.Features, ItemsFeature) >= 0;
            if (!resumed) _namedItems = items;
            _peerItems = _namedItems && items;
            _windowTimer?.Dispose();
            _windowTimer = null;
            _attempt = 0;
            // First message on every socket: how many reliable messages we have.
            WriteAck();
            // Our receive limits, only when they differ from the spec's floor (DECISIONS C).
            if (!resumed && !VolleyLimits.SameAsDefaults(_opts.ReceiveLimits))
                WriteNow(MsgPackWriter.Encode(new object?[] { 2L, "$limits", new object?[] { _opts.ReceiveLimits.ToWire() } }));
            // The features this client uses, out of the server's list (SPEC §11): after $ack and $limits, not on a resume.
            if (!resumed && _namedItems)
                WriteNow(MsgPackWriter.Encode(new object?[] { 2L, "$features", new object?[] { new object?[] { ItemsFeature } } }));
            if (!resumed)
            {
                // First socket of a session: the peer has nothing of ours (n is 0), so calls made
                // while connecting go out now.
                s.Synced = true;
                foreach (var m in _kept.Unacked)
                {
                    WriteNow(m.Bytes);
                    s.WrittenSeq = m.Seq;
                    if (m.Call != null && m.Call.GivenUp) WriteNow(CancelBytes(m.Call.Id));
                }
                _owedCancels.Clear();
            }
            // else: nothing reliable until the server's first $ack says what it has (Resync).
            StartHeartbeat(s, info);
            SetState(ConnectionState.Open);
            after.Add(() => _opened.TrySetResult(true));
            Emit(() => SessionOpened?.Invoke(resumed));
        }

        /// <summary>The peer's first $ack on a resumed socket: re-send what it lacks, in order.</summary>
        void Resync(SocketState s)
        {
            s.Synced = true;
            foreach (var m in _kept.Unacked)
            {
                WriteNow(m.Bytes);
                s.WrittenSeq = m.Seq;
                // Re-sent a request we gave up on while offline: its $cancel right after it, never before.
                if (m.Call != null && m.Call.GivenUp) WriteNow(CancelBytes(m.Call.Id));
            }
            // Given up while offline, and the server had it (its $ack covered it): the handler
            // may still run there. Not for an id a new call has taken since.
            foreach (var call in _owedCancels)
                if (call.Seq <= _kept.Acked && !_pending.ContainsKey(call.Id)) WriteNow(CancelBytes(call.Id));
            _owedCancels.Clear();
        }

        void OnRequest(uint id, string method, object?[] args, ScanResult scan, List<Action> after)
        {
            var l = _opts.ReceiveLimits;
            if (method.Length == 0 || method.Length > l.MaxMethodLength || args.Length > l.MaxParams || scan.Depth - 1 > l.MaxDepth || scan.Elements > l.MaxElements)
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, "request past this client's limits"));
                return;
            }
            if (_incoming.ContainsKey(id))
            {
                // DECISIONS B: a request whose id is still running here is a broken peer.
                var sock = _socket;
                if (sock != null) after.Add(Violation(sock, $"request id {id} is still running"));
                return;
            }
            Func<VolleyCall, Task<object?>>? handler = null;
            // The protocol's own: a stream's items (VolleyClient.Streams.cs), a call with uploads
            // and the server reading one (VolleyClient.Uploads.cs).
            var own = method[0] == '$' && (method == ItemMethod || method == ItemsMethod || method == CallMethod || method == UploadMethod);
            if (!own && (method[0] == '$' || !_handlers.TryGetValue(method, out handler)))
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.MethodNotFound, $"no handler for {method}"));
                return;
            }
            if (_incoming.Count >= l.MaxIncomingPending)
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.Overloaded, "too many calls running"));
                return;
            }
            if (own)
            {
                if (method == ItemMethod || method == ItemsMethod) OnItem(id, method, args);
                else if (method == CallMethod) OnCall(id, args, after);
                else OnUpload(id, args, after);
                return;
            }
            var call = new VolleyCall(this, id, method, args);
            _incoming[id] = call;
            if (_opts.HandlerTimeout is TimeSpan t && t > TimeSpan.Zero) StartHandlerDeadline(call, t);
            after.Add(Dispatch(call, handler!));
        }

        Action Violation(SocketState s, string why) => () => ProtocolViolation(s, CloseCodes.ProtocolError, why);
        Action Dispatch(VolleyCall call, Func<VolleyCall, Task<object?>> handler) => () => Post(() => RunHandler(call, handler));
        void StartHandlerDeadline(VolleyCall call, TimeSpan t) =>
            call.Deadline = _scheduler.Schedule(t, () => HandlerTimedOut(call, t));

        async void RunHandler(VolleyCall call, Func<VolleyCall, Task<object?>> handler)
        {
            object? result = null;
            Exception? failure = null;
            try
            {
                if (call.Aborted) return;
                result = await handler(call).ConfigureAwait(false);
                if (TryProduce(call, result)) return; // a stream: its items, then its end (VolleyClient.Streams.cs)
            }
            catch (Exception e)
            {
                failure = e;
            }
            // async void: nothing may escape (it would reach the app's context or crash the process).
            try
            {
                Finish(call, failure as VolleyRpcException, result, failure);
            }
            catch (Exception e)
            {
                ReportHandlerError(e, call.Method);
            }
        }

        void HandlerTimedOut(VolleyCall call, TimeSpan t)
        {
            lock (_lock)
            {
                if (!_incoming.TryGetValue(call.Id, out var c) || c != call) return;
                _incoming.Remove(call.Id);
                call.TimedOut = true;
                ReplyError(call.Id, new VolleyRpcException(ErrorCodes.Timeout, $"{call.Method} did not finish within {t.TotalMilliseconds:0} ms"));
            }
            call.Cancel();
        }

        /// <summary>A handler finished: send its result or error, unless the call was aborted or timed out.</summary>
        void Finish(VolleyCall call, VolleyRpcException? rpcError, object? result, Exception? failure)
        {
            Exception? report = null;
            lock (_lock)
            {
                call.Deadline?.Dispose();
                if (call.Aborted || call.TimedOut || !_incoming.TryGetValue(call.Id, out var c) || c != call) return;
                _incoming.Remove(call.Id);
                if (rpcError != null) ReplyError(call.Id, rpcError);
                else if (failure != null)
                {
                    ReplyError(call.Id, new VolleyRpcException(ErrorCodes.Internal, "internal error"));
                    report = failure;
                }
                else
                {
                    byte[] bytes;
                    try
                    {
                        bytes = MsgPackWriter.Encode(new object?[] { 1L, (long)call.Id, null, result }, Converters);
                        CheckSize(bytes, call.Method + " result", _peerLimits);
                    }
                    catch (Exception e)
                    {
                        // Also what the app's own toWire converter throws: never out of here.
                        // The caller gets INTERNAL; onError sees why (DECISIONS A).
                        ReplyError(call.Id, new VolleyRpcException(ErrorCodes.Internal, "internal error"));
                        report = e;
                        bytes = Array.Empty<byte>();
                    }
                    if (bytes.Length > 0) SendReliable(bytes, null);
                }
            }
            if (report != null) ReportHandlerError(report, call.Method);
        }

        void ReplyError(uint id, VolleyRpcException e)
        {
            byte[] bytes;
            try
            {
                bytes = MsgPackWriter.Encode(new object?[] { 1L, (long)id, e.ToWire(), null }, Converters);
            }
            catch (MsgPackEncodeException)
            {
                bytes = MsgPackWriter.Encode(new object?[] { 1L, (long)id, new VolleyRpcException(e.Code, e.Message).ToWire(), null });
            }
            SendReliable(bytes, null);
        }

        internal void ReportHandlerError(Exception e, string method)
        {
            var h = _opts.OnHandlerError;
            if (h != null)
            {
                try { h(e, method); }
                catch (Exception hookError) { Log(VolleyLogLevel.Error, $"OnHandlerError threw on {method}'s error ({e.Message})", hookError); }
            }
            else Log(VolleyLogLevel.Error, $"handler {method} threw", e);
        }

        /// <summary>
        /// To the app's <see cref="VolleyClientOptions.Log"/>; without one, warnings and errors
        /// go to Console.Error (invisible in Unity: set Log to Debug.Log there).
        /// </summary>
        internal void Log(VolleyLogLevel level, string message, Exception? e = null)
        {
            var log = _opts.Log;
            if (log != null)
            {
                try { log(level, message, e); }
                catch (Exception) { }
            }
            else if (level >= VolleyLogLevel.Warning) Console.Error.WriteLine($"[volley] {level}: {message}{(e != null ? ": " + e : "")}");
        }
    }
}
