// The two kinds of calls in flight: ours waiting for the server's reply (PendingCall), and
// the server's running in one of our handlers (VolleyCall).

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;

namespace Volley
{
    /// <summary>A call to the server waiting for its response.</summary>
    internal abstract class PendingCall
    {
        public uint Id;
        public string Method = "";
        /// <summary>Sequence number of the request message.</summary>
        public long Seq;
        /// <summary>Settled locally (deadline, cancel, session end): a response that comes later is dropped.</summary>
        public bool GivenUp;
        /// <summary>When the deadline passes (Stopwatch ticks), 0 for none: the client's one sweep checks it (no timer per call).</summary>
        public long DeadlineAt;
        public long TimeoutMs;
        public CancellationTokenRegistration CancelReg;
        public abstract void Resolve(object? wire);
        public abstract void Reject(Exception e);
        public abstract Task Task { get; }

        /// <summary>Stops the deadline and the token: the call is settled or given up.</summary>
        public void DisposeTimers()
        {
            DeadlineAt = 0;
            CancelReg.Dispose();
        }
    }

    /// <summary>A response taken under the lock, settled after it (no closure per response).</summary>
    internal struct Settlement
    {
        public PendingCall Call;
        public object? Result;
        public Exception? Error;
    }

    internal sealed class PendingCall<T> : PendingCall
    {
        readonly TaskCompletionSource<T> _tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly ValueConverters _conv;

        public PendingCall(ValueConverters conv) => _conv = conv;
        public Task<T> Typed => _tcs.Task;
        public override Task Task => _tcs.Task;

        public override void Resolve(object? wire)
        {
            T value;
            try
            {
                value = _conv.FromWire<T>(wire);
            }
            catch (Exception e)
            {
                // Whatever the app's converter throws (KeyNotFoundException from m["x"], an
                // InvalidCastException) fails this call only: it never reaches the receive loop.
                var why = e is WireConversionException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                _tcs.TrySetException(new VolleyRpcException(ErrorCodes.Internal, $"{Method}: the result does not convert to {typeof(T).Name}: {why}", null, e));
                return;
            }
            _tcs.TrySetResult(value);
        }

        public override void Reject(Exception e) => _tcs.TrySetException(e);
    }

    /// <summary>A call from the server, as a handler sees it.</summary>
    public sealed class VolleyCall
    {
        internal readonly HandlerCancellation Cts;
        internal IVolleyTimer? Deadline;
        /// <summary>Aborted ($cancel, session end): no response is sent.</summary>
        internal volatile bool Aborted;
        internal volatile bool TimedOut;

        internal VolleyCall(VolleyClient client, uint id, string method, object?[] args)
        {
            Client = client;
            Cts = new HandlerCancellation(this);
            Id = id;
            Method = method;
            Args = args;
        }

        public VolleyClient Client { get; }
        public uint Id { get; }
        public string Method { get; }
        /// <summary>Decoded params (see MsgPackReader for the forms).</summary>
        public object?[] Args { get; }

        /// <summary>Fires when the server cancels the call (<c>$cancel</c>), the handler deadline passes, or the session ends.</summary>
        public CancellationToken CancellationToken => Cts.Token;

        /// <summary>Fire the handler's token; what its callbacks throw goes to the error hook, never to the caller.</summary>
        internal void Cancel() => Cts.Cancel();

        /// <summary>
        /// Param i as an upload (SPEC §12: the server passed an async iterable there), each item
        /// converted to T: read it with <c>await foreach</c>, once, before the handler returns.
        /// INVALID_PARAMS if the server sent no upload there.
        /// </summary>
        public IAsyncEnumerable<T> Upload<T>(int i)
        {
            if (i < Args.Length && Args[i] is Streams.UploadReader r) return r.Items<T>();
            throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{Method}: param {i} is not an upload");
        }

        /// <summary>Param i converted to T (a missing param reads as nil); INVALID_PARAMS if it doesn't convert.</summary>
        public T Arg<T>(int i)
        {
            try
            {
                return Client.Converters.FromWire<T>(i < Args.Length ? Args[i] : null);
            }
            catch (WireConversionException e)
            {
                throw new VolleyRpcException(ErrorCodes.InvalidParams, $"{Method}: param {i}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// A handler's token source whose Cancel never throws: callbacks the app registered on the
    /// token run inside Cancel, and what they throw must not reach the receive loop or a timer.
    /// </summary>
    internal sealed class HandlerCancellation
    {
        readonly CancellationTokenSource _cts = new CancellationTokenSource();
        readonly VolleyCall _call;

        public HandlerCancellation(VolleyCall call) => _call = call;
        public CancellationToken Token => _cts.Token;

        public void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (Exception e)
            {
                _call.Client.ReportHandlerError(e is AggregateException a && a.InnerExceptions.Count == 1 ? a.InnerExceptions[0] : e, _call.Method);
            }
        }
    }
}
