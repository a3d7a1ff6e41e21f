#nullable enable
using System;
using System.Net.WebSockets;
using System.Threading;
using Volley.Wire;

namespace Volley
{
    /// <summary>How the token reaches the server's authenticate() (SPEC §1).</summary>
    public enum TokenTransport
    {
        /// <summary><c>?token=</c> in the URL (works everywhere, WebGL included).</summary>
        Query,
        /// <summary><c>Authorization: Bearer</c> header (keeps the token out of access logs; not in browsers).</summary>
        Header,
    }

    /// <summary>Reconnect with jittered exponential backoff (as the TypeScript client does).</summary>
    public sealed class ReconnectOptions
    {
        public bool Enabled = true;
        public TimeSpan InitialDelay = TimeSpan.FromMilliseconds(250);
        public TimeSpan MaxDelay = TimeSpan.FromSeconds(5);
        public double Factor = 2;
        /// <summary>Fraction of each delay that is random (0…1), so a restart isn't met by every client at once.</summary>
        public double Jitter = 0.5;
        /// <summary>Give up after this many attempts in a row.</summary>
        public int MaxAttempts = int.MaxValue;

        public TimeSpan Delay(int attempt, Random random)
        {
            var baseMs = Math.Min(MaxDelay.TotalMilliseconds, InitialDelay.TotalMilliseconds * Math.Pow(Factor, attempt));
            var jitter = Math.Min(1, Math.Max(0, Jitter));
            return TimeSpan.FromMilliseconds(Math.Round(baseMs * (1 - jitter * random.NextDouble())));
        }
    }

    /// <summary>Severity of a <see cref="VolleyClientOptions.Log"/> line.</summary>
    public enum VolleyLogLevel
    {
        Debug,
        Info,
        Warning,
        Error,
    }

    public sealed class VolleyClientOptions
    {
        public string? Token;
        public TokenTransport TokenIn = TokenTransport.Query;
        /// <summary>Deadline of calls that give none. Default 10 s.</summary>
        public TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Upgrade plus the server's <c>$session</c> must arrive within this. Default 10 s.</summary>
        public TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
        public ReconnectOptions Reconnect = new ReconnectOptions();
        /// <summary>Heartbeat interval; default what the server advises in <c>$session</c>.</summary>
        public TimeSpan? Heartbeat;
        /// <summary>No message for this long means the link is dead (close 4008, reconnect). Default 2.5 × heartbeat.</summary>
        public TimeSpan? HeartbeatTimeout;
        /// <summary>Bound on a handler the server calls (its token fires, the server gets TIMEOUT). Default none.</summary>
        public TimeSpan? HandlerTimeout;
        /// <summary>
        /// Handlers, notification callbacks and events run here. Null (default): the
        /// SynchronizationContext current where the client is constructed (Unity's main thread
        /// when made there), see <see cref="CaptureContext"/>; with none, the thread pool.
        /// </summary>
        public SynchronizationContext? Context;
        /// <summary>
        /// Default true: with no <see cref="Context"/>, capture SynchronizationContext.Current at
        /// construction for callbacks. False: callbacks run on the thread pool (in arrival order),
        /// e.g. for a server-side bot whose main thread blocks.
        /// </summary>
        public bool CaptureContext = true;
        /// <summary>
        /// Where the client logs: handler and callback errors (when <see cref="OnHandlerError"/>
        /// is not set), messages refused, protocol violations. Default null: warnings and errors
        /// to Console.Error (invisible in Unity: set <c>(level, msg, e) => Debug.Log…</c>).
        /// </summary>
        public Action<VolleyLogLevel, string, Exception?>? Log;
        /// <summary>Conversions of app types; default <see cref="ValueConverters.Default"/>.</summary>
        public ValueConverters? Converters;
        /// <summary>A handler threw something that is not a VolleyRpcException (the server got INTERNAL).</summary>
        public Action<Exception, string>? OnHandlerError;
        /// <summary>Calls waiting for replies; more fail at once with OVERLOADED. Default 4096.</summary>
        public int MaxOutgoingPending = 4096;
        /// <summary>Sent-but-unacknowledged reliable bytes kept for resume; past it the link is closed 4002. Default 16 MiB.</summary>
        public long MaxUnackedBytes = 16L * 1024 * 1024;
        /// <summary>What this client accepts from the server (the spec's floor by default).</summary>
        public VolleyLimits ReceiveLimits = new VolleyLimits();
        /// <summary>Last chance to set proxy, certificates, extra headers on each socket (the default ClientWebSocket transport).</summary>
        public Action<ClientWebSocketOptions>? ConfigureSocket;
        /// <summary>
        /// Makes the socket of each connection attempt. Default: <see cref="Volley.Transport.ClientWebSocketTransport"/>,
        /// or on Unity WebGL players <c>Volley.Transport.WebGLTransport</c> (the page's WebSocket).
        /// </summary>
        public Func<Volley.Transport.IVolleyTransport>? Transport;
        /// <summary>
        /// Where the client's timers (deadlines, heartbeats, connect timeout, reconnect backoff,
        /// resume window) and internal work run. Default: <see cref="TimerScheduler"/>
        /// (System.Threading.Timer, the thread pool), or on Unity WebGL players, where those never
        /// run, a <see cref="FrameScheduler"/>: call <see cref="VolleyClient.Tick"/> every frame.
        /// A FrameScheduler may be shared by several clients (call its Update once a frame).
        /// </summary>
        public IVolleyScheduler? Scheduler;
    }
}
