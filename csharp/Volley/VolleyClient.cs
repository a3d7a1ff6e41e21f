// VolleyClient: a session with a Volley server over ClientWebSocket. Calls both ways,
// notifications, deadlines and cancellation, heartbeats, reconnect with jittered backoff and
// resume (`?sid=`) with exactly-once delivery by sequence numbers (DECISIONS B).
//
// Threading: one lock guards all session state; the receive loop of the current socket
// decodes and dispatches under it. Handlers, notification callbacks and events are posted to
// the given SynchronizationContext (or the thread pool), never run under the lock. Call
// results complete tasks with RunContinuationsAsynchronously, so `await` resumes in the
// caller's own context (Unity's main thread when called from there).

#nullable enable
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;

namespace Volley
{
    public enum ConnectionState
    {
        /// <summary>First socket not yet confirmed by <c>$session</c>.</summary>
        Connecting,
        /// <summary>Session live.</summary>
        Open,
        /// <summary>Socket dropped; calls wait for the session to resume.</summary>
        Reconnecting,
        /// <summary>Final: calls fail DISCONNECTED.</summary>
        Closed,
    }

    public readonly struct CloseInfo
    {
        public CloseInfo(int code, string reason)
        {
            Code = code;
            Reason = reason;
        }

        public int Code { get; }
        public string Reason { get; }
        public override string ToString() => $"{Code} {Reason}";
    }

    public sealed partial class VolleyClient : IDisposable
    {
        internal const int AckEvery = 128;
        internal const int AckEveryBytes = 256 * 1024;

        readonly object _lock = new object();
        readonly Uri _url;
        readonly VolleyClientOptions _opts;
        readonly Random _random = new Random();
        /// <summary>The first session of this connect; a new one when a failed first connect is tried again.</summary>
        TaskCompletionSource<bool> _opened = NewOpened();
        /// <summary>Where handlers, notification callbacks and events run (the options' Context, or the constructor's captured one), null for the thread pool.</summary>
        readonly SynchronizationContext? _context;
        readonly Dictionary<uint, PendingCall> _pending = new Dictionary<uint, PendingCall>();
        readonly Dictionary<uint, VolleyCall> _incoming = new Dictionary<uint, VolleyCall>();
        readonly Dictionary<string, Func<VolleyCall, Task<object?>>> _handlers = new Dictionary<string, Func<VolleyCall, Task<object?>>>();
        readonly Dictionary<string, Action<object?[]>> _notificationHandlers = new Dictionary<string, Action<object?[]>>();
        readonly KeptMessages _kept = new KeptMessages();
        /// <summary>Calls given up while their $cancel could not go out (offline, or before the resync): sent at the next resync (SPEC §5.4 step 4).</summary>
        readonly List<PendingCall> _owedCancels = new List<PendingCall>();

        ConnectionState _state = ConnectionState.Connecting;
        SessionInfo? _session;
        VolleyLimits _peerLimits = new VolleyLimits();
        uint _nextId;
        /// <summary>Reliable messages received and processed in this session (what our $ack says).</summary>
        long _received;
        long _receivedAcked;
        long _bytesSinceAck;
        bool _closing;
        /// <summary>Close() was called: ConnectAsync does not start over.</summary>
        bool _closedByApp;
        bool _started;
        CloseInfo? _closeInfo;
        int _attempt;
        IVolleyTimer? _reconnectTimer;
        IVolleyTimer? _windowTimer;
        /// <summary>Where the client's timers and internal work run (<see cref="VolleyClientOptions.Scheduler"/>).</summary>
        readonly IVolleyScheduler _scheduler;

        /// <summary>A client that connects on <see cref="ConnectAsync()"/>: register handlers first.</summary>
        public VolleyClient(string url, VolleyClientOptions? options = null)
        {
            _url = new Uri(url);
            _opts = options ?? new VolleyClientOptions();
            Converters = _opts.Converters ?? ValueConverters.Default;
            // Unity's main thread (or any UI thread) when constructed there: callbacks land on it.
            _context = _opts.Context ?? (_opts.CaptureContext ? SynchronizationContext.Current : null);
            _scheduler = _opts.Scheduler ?? DefaultScheduler();
        }

        /// <summary>System.Threading.Timer everywhere but Unity WebGL players, where it never fires: there, a FrameScheduler pumped by <see cref="Tick"/>.</summary>
        static IVolleyScheduler DefaultScheduler()
        {
#if UNITY_WEBGL && !UNITY_EDITOR
            return new FrameScheduler();
#else
            return TimerScheduler.Instance;
#endif
        }

        /// <summary>
        /// Runs the client's timers and internal work that are due (deadlines, heartbeats,
        /// reconnects) when its scheduler is a <see cref="FrameScheduler"/>: call it every frame
        /// on Unity WebGL (e.g. from a MonoBehaviour's Update). Elsewhere it does nothing.
        /// </summary>
        public void Tick() => (_scheduler as FrameScheduler)?.Update();

        static TaskCompletionSource<bool> NewOpened()
        {
            var t = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            // Nobody may await Opened (fire-and-forget use): observe its fault.
            t.Task.ContinueWith(x => { _ = x.Exception; }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            return t;
        }

        /// <summary>Connect and wait until the session is live. Throws VolleyRpcException REFUSED, DISCONNECTED or CANCELLED.</summary>
        public static Task<VolleyClient> ConnectAsync(string url, VolleyClientOptions? options = null, Action<VolleyClient>? register = null) =>
            ConnectAsync(url, options, register, CancellationToken.None);

        /// <summary>As above; the token abandons the attempt (CANCELLED).</summary>
        public static async Task<VolleyClient> ConnectAsync(string url, VolleyClientOptions? options, Action<VolleyClient>? register, CancellationToken cancellationToken)
        {
            var client = new VolleyClient(url, options);
            register?.Invoke(client);
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }

        /// <summary>Start connecting (once) and wait until the first session is live.</summary>
        public Task ConnectAsync() => ConnectAsync(CancellationToken.None);

        /// <summary>
        /// Start connecting and wait until the first session is live. The token abandons the
        /// attempt: it faults CANCELLED and the client is closed. After a first connect that
        /// failed (refused, unreachable, timed out, cancelled) this starts over; after
        /// <see cref="Close"/>, or once a session was live, the client stays closed.
        /// </summary>
        public Task ConnectAsync(CancellationToken cancellationToken)
        {
            if (cancellationToken.IsCancellationRequested)
                return Task.FromException(new VolleyRpcException(ErrorCodes.Cancelled, "connect cancelled before it started"));
            Task opened;
            lock (_lock)
            {
                // (Opened already faulted: the failed attempt's Final has finished.)
                if (_state == ConnectionState.Closed && _session == null && !_closedByApp && _opened.Task.IsCompleted)
                {
                    // The first connect failed: nothing of a session is left, start over.
                    _closing = false;
                    _started = false;
                    _opened = NewOpened();
                    SetState(ConnectionState.Connecting);
                }
                else if (_state == ConnectionState.Closed && _opened.Task.Status == TaskStatus.RanToCompletion)
                    return Task.FromException(new VolleyRpcException(ErrorCodes.Disconnected, "the client is closed (make a new one to connect again)"));
                if (!_started)
                {
                    _started = true;
                    Dial();
                }
                opened = _opened.Task;
            }
            return cancellationToken.CanBeCanceled && !opened.IsCompleted ? OpenedOrCancelled(opened, cancellationToken) : opened;
        }

        async Task OpenedOrCancelled(Task opened, CancellationToken cancellationToken)
        {
            var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(() => cancelled.TrySetResult(true)))
            {
                if (await Task.WhenAny(opened, cancelled.Task).ConfigureAwait(false) != opened)
                {
                    var error = new VolleyRpcException(ErrorCodes.Cancelled, "connect cancelled");
                    bool abandon;
                    lock (_lock) abandon = _state == ConnectionState.Connecting;
                    // Ends as a failed first connect does (pending calls DISCONNECTED, Opened
                    // faulted), so ConnectAsync may start over.
                    if (abandon) Final(new CloseInfo(CloseCodes.Dropped, "connect cancelled"), error);
                    if (!opened.IsCompleted || opened.IsFaulted) throw error;
                }
            }
            await opened.ConfigureAwait(false);
        }

        public ValueConverters Converters { get; }

        /// <summary>Completes when the first session is live; faults REFUSED / DISCONNECTED if the first connect fails.</summary>
        public Task Opened
        {
            get { lock (_lock) return _opened.Task; }
        }

        public ConnectionState State
        {
            get { lock (_lock) return _state; }
        }

        public string? SessionId
        {
            get { lock (_lock) return _session?.Sid; }
        }

        /// <summary>The server's receive limits (from <c>$session</c>) that calls are checked against.</summary>
        public VolleyLimits ServerLimits
        {
            get { lock (_lock) return _peerLimits.Clone(); }
        }

        public CloseInfo? LastClose
        {
            get { lock (_lock) return _closeInfo; }
        }

        /// <summary>Every change of <see cref="State"/>.</summary>
        public event Action<ConnectionState>? StateChanged;
        /// <summary>A session is live; true when it resumed (pending calls carried on).</summary>
        public event Action<bool>? SessionOpened;
        /// <summary>A socket closed (a reconnect may follow).</summary>
        public event Action<CloseInfo>? SocketClosed;
        /// <summary>A reconnect attempt is scheduled: attempt number and delay.</summary>
        public event Action<int, TimeSpan>? Reconnecting;

        // ---- calls to the server ------------------------------------------------------

        public Task<TResult> CallAsync<TResult>(string method, params object?[] args) =>
            CallAsync<TResult>(method, args, _opts.DefaultTimeout, CancellationToken.None);

        public Task<TResult> CallAsync<TResult>(string method, object?[]? args, CancellationToken cancellationToken) =>
            CallAsync<TResult>(method, args, _opts.DefaultTimeout, cancellationToken);

        /// <summary>
        /// Call a server method. Fails with VolleyRpcException: the server's error code, or
        /// TIMEOUT (deadline), CANCELLED (token), DISCONNECTED (session ended), INVALID_PARAMS
        /// (args refused locally: a type the wire lacks, or past the server's limits), OVERLOADED.
        /// </summary>
        public Task<TResult> CallAsync<TResult>(string method, object?[]? args, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            var call = new PendingCall<TResult>(Converters) { Method = method };
            var refused = Start(call, args ?? Array.Empty<object?>(), timeout, cancellationToken);
            return refused == null ? call.Typed : Task.FromException<TResult>(refused);
        }

        /// <summary>Sends a call's request (CallAsync, StreamAsync) and makes it pending: null, or why it was refused here.</summary>
        VolleyRpcException? Start(PendingCall call, object?[] args, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var method = call.Method;
            if (cancellationToken.IsCancellationRequested)
                return new VolleyRpcException(ErrorCodes.Cancelled, $"{method} was cancelled before it was sent");
            // Args that are IAsyncEnumerables are uploads: the call goes as $call (VolleyClient.Uploads.cs).
            var wrapped = WrapUploads(method, args, out var uploads);
            lock (_lock)
            {
                if (_state == ConnectionState.Closed)
                    return new VolleyRpcException(ErrorCodes.Disconnected, $"{method}: the client is closed");
                if (_pending.Count >= _opts.MaxOutgoingPending)
                    return new VolleyRpcException(ErrorCodes.Overloaded, $"{_pending.Count} calls already pending");
                var id = NextId();
                byte[] bytes;
                try
                {
                    bytes = wrapped == null ? EncodeChecked(0, id, method, args) : EncodeUploading(id, method, args.Length, wrapped);
                }
                catch (VolleyRpcException e)
                {
                    return e;
                }
                call.Id = id;
                _pending[id] = call;
                if (uploads != null) TrackUploads(call, uploads);
                SendReliable(bytes, call);
                if (timeout > TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
                {
                    call.TimeoutMs = (long)Math.Ceiling(timeout.TotalMilliseconds);
                    call.DeadlineAt = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
                    ArmSweep(call.DeadlineAt);
                }
                if (cancellationToken.CanBeCanceled) CancelOn(call, cancellationToken);
            }
            return null;
        }

        // Lambdas live in their own methods: a closure captured in CallAsync or SendReliable is
        // allocated on every call, not only when the lambda is needed.
        void CancelOn(PendingCall call, CancellationToken token) =>
            call.CancelReg = token.Register(() => GiveUp(call, new VolleyRpcException(ErrorCodes.Cancelled, $"{call.Method} was cancelled")));

        /// <summary>
        /// The send loop just woke. When more calls are in flight than messages are queued, their
        /// callers' continuations are likely about to queue more: one thread-pool hop lets them
        /// run first and share this frame (the TypeScript client batches per tick the same
        /// way). 64 calls in flight: 1 to 3 messages per frame before, and ~2x the calls/s
        /// after; one call at a time never waits for it.
        /// </summary>
        bool ShouldCoalesce(SocketState s)
        {
            lock (_lock) return _pending.Count > s.Outbox.Count;
        }

        void CloseNotAcknowledging(SocketState s) =>
            _scheduler.Post(() => ProtocolViolation(s, CloseCodes.ProtocolError, "not acknowledging"));

        /// <summary>Call whose result is not needed (still waits for success or error).</summary>
        public Task CallAsync(string method, params object?[] args) => CallAsync<object?>(method, args);

        // Without these, CallAsync("m", args, timeout) bound to the params overload above and
        // sent [args, timeout] as the params (refused at run time).

        /// <summary>As <see cref="CallAsync{TResult}(string, object?[], TimeSpan, CancellationToken)"/>, result not needed.</summary>
        public Task CallAsync(string method, object?[]? args, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            CallAsync<object?>(method, args, timeout, cancellationToken);

        /// <summary>As <see cref="CallAsync{TResult}(string, object?[], CancellationToken)"/>, result not needed.</summary>
        public Task CallAsync(string method, object?[]? args, CancellationToken cancellationToken) =>
            CallAsync<object?>(method, args, _opts.DefaultTimeout, cancellationToken);

        /// <summary>Fire and forget: at most once (dropped while the socket is down).</summary>
        public void Notify(string method, params object?[] args)
        {
            lock (_lock)
            {
                if (_state == ConnectionState.Closed) return;
                var bytes = EncodeChecked(2, 0, method, args);
                WriteNow(bytes);
            }
        }

        uint NextId()
        {
            // Sequential mod 2^32, skipping ids still pending (DECISIONS B).
            while (_pending.ContainsKey(_nextId)) _nextId++;
            return _nextId++;
        }

        /// <summary>One writer per client, used under the lock: no buffer per message, only the kept bytes.</summary>
        readonly MsgPackWriter _writer = new MsgPackWriter(1024);

        /// <summary>
        /// Encodes a request <c>[0, id, method, args]</c> (kind 0) or a notification
        /// <c>[2, method, args]</c> (kind 2) and checks it against the server's announced limits. Under the lock.
        /// </summary>
        /// <summary>A <c>$call</c>: its own method and args checked against the server's limits as a request's would be.</summary>
        byte[] EncodeUploading(uint id, string method, int argCount, object?[] wrapped)
        {
            if (argCount > _peerLimits.MaxParams)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{method}: {argCount} params, past the server's {_peerLimits.MaxParams}");
            return EncodeChecked(0, id, CallMethod, wrapped);
        }

        byte[] EncodeChecked(int kind, uint id, string method, object?[] args)
        {
            var l = _peerLimits;
            if (method.Length == 0 || method.Length > l.MaxMethodLength)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"method name of {method.Length} characters (server accepts 1…{l.MaxMethodLength})");
            if (args.Length > l.MaxParams)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{method}: {args.Length} params (server accepts {l.MaxParams})");
            byte[] bytes;
            try
            {
                var w = _writer;
                w.Clear();
                w.WriteArrayHeader(kind == 0 ? 4 : 3);
                w.WriteInt(kind);
                if (kind == 0) w.WriteInt(id);
                w.WriteString(method);
                w.Write(args, Converters);
                bytes = w.ToArray();
                // A message that grew the buffer far (a big blob) doesn't keep it.
                if (w.Capacity > 64 * 1024) _writer.Shrink(1024);
            }
            catch (MsgPackEncodeException e)
            {
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{method}: {e.Message}", null, e);
            }
            catch (Exception e)
            {
                // The app's own toWire converter threw.
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{method}: {e.GetType().Name}: {e.Message}", null, e);
            }
            CheckSize(bytes, method, l);
            return bytes;
        }

        static void CheckSize(byte[] bytes, string what, VolleyLimits l)
        {
            if (bytes.Length > l.MaxMessageBytes)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{what}: {bytes.Length} bytes (server accepts {l.MaxMessageBytes})");
            // The envelope is level 0; params (or a result) count from 1, as the server measures.
            var scan = MsgPackReader.Scan(bytes, 0, bytes.Length);
            if (scan.Depth - 1 > l.MaxDepth)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{what}: nested {scan.Depth - 1} deep (server accepts {l.MaxDepth})");
            if (scan.Elements > l.MaxElements)
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{what}: {scan.Elements} values (server accepts {l.MaxElements})");
        }

        // ---- deadlines: one sweep per client ------------------------------------------------

        IVolleyTimer? _sweepTimer;
        /// <summary>When the sweep is due (Stopwatch ticks); long.MaxValue when not armed.</summary>
        long _sweepAt = long.MaxValue;

        /// <summary>Make the sweep run by <paramref name="at"/> (under the lock). A timer per client, re-armed only when a deadline comes sooner.</summary>
        void ArmSweep(long at)
        {
            if (at >= _sweepAt) return;
            _sweepAt = at;
            var ms = (at - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency + 1;
            _sweepTimer ??= _scheduler.CreateTimer(Sweep);
            _sweepTimer.Change(TimeSpan.FromTicks(Math.Max(1, Math.Min(ms, int.MaxValue)) * TimeSpan.TicksPerMillisecond));
        }

        /// <summary>Fails the calls whose deadline passed with TIMEOUT; re-arms for the next one.</summary>
        void Sweep()
        {
            List<PendingCall>? expired = null;
            lock (_lock)
            {
                var now = Stopwatch.GetTimestamp();
                var next = long.MaxValue;
                _sweepAt = long.MaxValue;
                foreach (var call in _pending.Values)
                {
                    var at = call.DeadlineAt;
                    if (at == 0) continue;
                    if (at <= now) (expired ??= new List<PendingCall>()).Add(call);
                    else if (at < next) next = at;
                }
                if (next != long.MaxValue) ArmSweep(next);
            }
            if (expired == null) return;
            foreach (var call in expired)
                GiveUp(call, new VolleyRpcException(ErrorCodes.Timeout, $"{call.Method} timed out after {call.TimeoutMs} ms"));
        }

        /// <summary>Our side stops waiting: deadline, token, or session end. Tells the server if it can.</summary>
        void GiveUp(PendingCall call, VolleyRpcException reason)
        {
            lock (_lock)
            {
                if (!_pending.TryGetValue(call.Id, out var p) || p != call) return;
                _pending.Remove(call.Id);
                call.GivenUp = true;
                call.DisposeTimers();
                // Cancel now if a socket is live and has the request. Otherwise the $cancel is
                // owed to the next resync: right after the re-sent request if the server's
                // $ack lacks it, after the re-sends if the server had it (SPEC §5.4 step 4).
                if (_socket != null && _socket.Synced && call.Seq <= _socket.WrittenSeq) WriteNow(CancelBytes(call.Id));
                else _owedCancels.Add(call);
            }
            call.Reject(reason);
        }

        static byte[] CancelBytes(uint id) => MsgPackWriter.Encode(new object?[] { 2L, "$cancel", new object?[] { (long)id } });

        // ---- handlers the server may call --------------------------------------------

        /// <summary>Raw handler: args as decoded, the call's token, any wire value back.</summary>
        public void HandleCall(string method, Func<VolleyCall, Task<object?>> handler)
        {
            if (method.Length == 0 || method[0] == '$') throw new ArgumentException("method names starting with $ are reserved", nameof(method));
            lock (_lock) _handlers[method] = handler;
        }

        public void Handle<TResult>(string method, Func<CancellationToken, Task<TResult>> handler) =>
            HandleCall(method, async c => (object?)await handler(c.CancellationToken).ConfigureAwait(false));

        public void Handle<TArg, TResult>(string method, Func<TArg, CancellationToken, Task<TResult>> handler) =>
            HandleCall(method, async c => (object?)await handler(c.Arg<TArg>(0), c.CancellationToken).ConfigureAwait(false));

        public void Handle<TArg1, TArg2, TResult>(string method, Func<TArg1, TArg2, CancellationToken, Task<TResult>> handler) =>
            HandleCall(method, async c => (object?)await handler(c.Arg<TArg1>(0), c.Arg<TArg2>(1), c.CancellationToken).ConfigureAwait(false));

        public void Handle<TArg1, TArg2, TArg3, TResult>(string method, Func<TArg1, TArg2, TArg3, CancellationToken, Task<TResult>> handler) =>
            HandleCall(method, async c => (object?)await handler(c.Arg<TArg1>(0), c.Arg<TArg2>(1), c.Arg<TArg3>(2), c.CancellationToken).ConfigureAwait(false));

        /// <summary>Synchronous handler (runs on the context, its result is sent at once).</summary>
        public void Handle<TResult>(string method, Func<TResult> handler) =>
            HandleCall(method, c => Task.FromResult((object?)handler()));

        public void Handle<TArg, TResult>(string method, Func<TArg, TResult> handler) =>
            HandleCall(method, c => Task.FromResult((object?)handler(c.Arg<TArg>(0))));

        public void Handle<TArg1, TArg2, TResult>(string method, Func<TArg1, TArg2, TResult> handler) =>
            HandleCall(method, c => Task.FromResult((object?)handler(c.Arg<TArg1>(0), c.Arg<TArg2>(1))));

        /// <summary>Notification from the server (raw params).</summary>
        public void On(string method, Action<object?[]> handler)
        {
            lock (_lock) _notificationHandlers[method] = handler;
        }

        /// <summary>Notification with one typed param (a param that doesn't convert drops the notification).</summary>
        public void On<T>(string method, Action<T> handler) =>
            On(method, args => handler(Converters.FromWire<T>(args.Length > 0 ? args[0] : null)));

        // ---- closing -------------------------------------------------------------------

        /// <summary>Close for good: no reconnect; pending calls fail DISCONNECTED; the server ends the session (1000).</summary>
        public void Close(int code = CloseCodes.Normal, string reason = "")
        {
            SocketState? s;
            lock (_lock)
            {
                _closedByApp = true;
                if (_closing) return;
                _closing = true;
                s = _socket;
            }
            s?.CloseGracefully(code, reason);
            Final(new CloseInfo(code, reason.Length > 0 ? reason : "closed by client"), null);
        }

        /// <summary>Close and wait (briefly) for the close handshake.</summary>
        public async Task CloseAsync(int code = CloseCodes.Normal, string reason = "")
        {
            SocketState? s;
            lock (_lock) s = _socket;
            Close(code, reason);
            if (s != null) await _scheduler.WithTimeout(s.Finished.Task, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }

        /// <summary>Cut the socket as a network failure would (tests, "airplane mode"): the client reconnects and resumes.</summary>
        public void Drop()
        {
            SocketState? s;
            lock (_lock) s = _socket;
            if (s != null) Lost(s, new CloseInfo(CloseCodes.Dropped, "dropped by client"), abort: true);
        }

        public void Dispose() => Close();

        // ---- dispatch to the app's context ------------------------------------------

        readonly Queue<Action> _dispatch = new Queue<Action>();
        bool _dispatching;
        Action? _drain;
        SendOrPostCallback? _drainOnContext;

        /// <summary>
        /// Runs app code (handlers, notifications, events) in arrival order, one at a time: on
        /// the given SynchronizationContext, else on the scheduler. One drain of our own queue
        /// is posted at a time, not each action: a context need not keep Post order (xUnit's and
        /// ASP.NET's run posts concurrently; kit case 4.2 saw notes 2 before 1 on xUnit's).
        /// </summary>
        void Post(Action action)
        {
            lock (_dispatch)
            {
                _dispatch.Enqueue(action);
                if (_dispatching) return;
                _dispatching = true;
            }
            var ctx = _context;
            if (ctx != null) ctx.Post(_drainOnContext ??= _ => Drain(), null);
            else _scheduler.Post(_drain ??= Drain);
        }

        void Drain()
        {
            while (true)
            {
                Action next;
                lock (_dispatch)
                {
                    if (_dispatch.Count == 0)
                    {
                        _dispatching = false;
                        return;
                    }
                    next = _dispatch.Dequeue();
                }
                try { next(); }
                catch (Exception e) { ReportHandlerError(e, "callback"); } // never throws: this is the thread pool
            }
        }

        void Emit(Action action) => Post(() =>
        {
            try { action(); }
            catch (Exception e) { ReportHandlerError(e, "event"); }
        });
    }
}
