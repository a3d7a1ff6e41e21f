// Uploads (SPEC §12, "Uploads"), both ways, as protocol/engine/uploads.ts does them. A call
// whose args hold an IAsyncEnumerable goes out as `$call [method, args, at]` (nil at each
// upload's place, `at` their indexes); the server's handler reads an upload when it wants
// with `$upload [callId, index]`, answered here as a stream of its items (Produce: credit,
// cancel, errors as for any stream). An upload lasts as long as its call: it is forgotten,
// and its producer stopped, when the call settles. The other way, the server's `$call`
// reaches a handler here with an UploadReader in each upload's place.

#nullable enable
using System;
using System.Collections.Generic;
using System.Text;
using System.Threading.Tasks;
using Volley.Streams;

namespace Volley
{
    /// <summary>
    /// An upload for any item type: <c>CallAsync("m", VolleyUpload.Of(items))</c>. Any
    /// <c>IAsyncEnumerable</c> of a reference type, or of long, int, double, float or bool, is
    /// an upload as it is; wrap others (a struct's) with this.
    /// </summary>
    public sealed class VolleyUpload
    {
        internal readonly IItemSource Source;
        VolleyUpload(IItemSource source) => Source = source;

        /// <summary>The items of <paramref name="items"/> as an upload param.</summary>
        public static VolleyUpload Of<T>(IAsyncEnumerable<T> items) => new VolleyUpload(new ItemSource<T>(items ?? throw new ArgumentNullException(nameof(items))));
    }

    public sealed partial class VolleyClient
    {
        /// <summary>The request carrying a call with uploads: <c>[method, args, at]</c>.</summary>
        internal const string CallMethod = "$call";
        /// <summary>The callee reading one upload: <c>[callId, index]</c>, answered as a stream.</summary>
        internal const string UploadMethod = "$upload";

        /// <summary>Uploads of calls from here, by call id, until each call settles (made at the first).</summary>
        Dictionary<uint, Uploads>? _uploads;

        // ---- the caller -----------------------------------------------------------------

        /// <summary>An arg that is an upload, as a source of items; null for any other (the wire's own values first: no allocation).</summary>
        static IItemSource? AsUpload(object? a)
        {
            switch (a)
            {
                case null:
                case string _:
                case ValueType _:
                case byte[] _:
                case object?[] _:
                    return null;
                case VolleyUpload u: return u.Source;
                case IAsyncEnumerable<object?> o: return new ItemSource<object?>(o);
                case IAsyncEnumerable<long> l: return new ItemSource<long>(l);
                case IAsyncEnumerable<int> i: return new ItemSource<int>(i);
                case IAsyncEnumerable<double> d: return new ItemSource<double>(d);
                case IAsyncEnumerable<float> f: return new ItemSource<float>(f);
                case IAsyncEnumerable<bool> b: return new ItemSource<bool>(b);
                default: return null;
            }
        }

        /// <summary>
        /// A call's args with uploads: the <c>$call</c> params and the uploads by index, or null
        /// when none is an upload (what every other call pays: a type check per arg).
        /// </summary>
        static object?[]? WrapUploads(string method, object?[] args, out Dictionary<int, IItemSource>? sources)
        {
            sources = null;
            for (var i = 0; i < args.Length; i++)
            {
                var s = AsUpload(args[i]);
                if (s != null) (sources ??= new Dictionary<int, IItemSource>())[i] = s;
            }
            if (sources == null) return null;
            var wire = new object?[args.Length];
            var at = new object?[sources.Count];
            var n = 0;
            for (var i = 0; i < args.Length; i++)
            {
                if (sources.ContainsKey(i)) at[n++] = (long)i;
                else wire[i] = args[i];
            }
            return new object?[] { method, wire, at };
        }

        /// <summary>Under the lock, the call just made pending: its uploads are kept until it settles.</summary>
        void TrackUploads(PendingCall call, Dictionary<int, IItemSource> sources)
        {
            var up = new Uploads(call, call.Method, sources);
            (_uploads ??= new Dictionary<uint, Uploads>())[call.Id] = up;
            // A stream's call (bidirectional) settles through EndStream instead.
            if (!(call is StreamCall)) call.Task.ContinueWith(_ => ReleaseUploads(call), TaskScheduler.Default);
        }

        /// <summary>The call settled (answered, timed out, cancelled, the session ended): its uploads end with it.</summary>
        void ReleaseUploads(PendingCall call)
        {
            VolleyCall[] serving;
            lock (_lock)
            {
                if (_uploads == null || !_uploads.TryGetValue(call.Id, out var up) || up.Call != call) return;
                _uploads.Remove(call.Id);
                up.Sources.Clear(); // never read: nothing was started, nothing to dispose
                serving = up.Serving.ToArray();
                foreach (var c in serving)
                {
                    if (!_incoming.TryGetValue(c.Id, out var x) || x != c) continue; // done, or cancelled by the reader
                    _incoming.Remove(c.Id);
                    c.Aborted = true;
                }
            }
            foreach (var c in serving) c.Cancel(); // its producer stops and disposes the enumerator
        }

        /// <summary>
        /// <c>$upload [callId, index]</c> (under the lock, counted against MaxIncomingPending):
        /// answered as a stream of that upload. Anything else (a call without uploads, another
        /// index, one read already, a call settled) is refused INVALID_PARAMS and keeps nothing.
        /// </summary>
        void OnUpload(uint id, object?[] args, List<Action> after)
        {
            if (args.Length == 2 && args[0] is long cid && cid >= 0 && cid <= uint.MaxValue && args[1] is long index && index >= 0 && index < int.MaxValue
                && _uploads != null && _uploads.TryGetValue((uint)cid, out var up) && up.Sources.TryGetValue((int)index, out var source))
            {
                up.Sources.Remove((int)index);
                var call = new VolleyCall(this, id, up.Method, args);
                _incoming[id] = call;
                up.Serving.Add(call);
                after.Add(() => Post(() => Produce(call, source)));
                return;
            }
            ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, $"no upload {Short(args, 1)} of call {Short(args, 0)} to read"));
        }

        static string Short(object?[] args, int i)
        {
            var s = i < args.Length ? Convert.ToString(args[i], System.Globalization.CultureInfo.InvariantCulture) ?? "nil" : "nil";
            return s.Length > 12 ? s.Substring(0, 12) : s;
        }

        // ---- the callee -----------------------------------------------------------------

        /// <summary>
        /// <c>$call [method, args, at]</c> (under the lock, counted against MaxIncomingPending):
        /// checked as a request would be, an UploadReader in each upload's place, then run as
        /// <c>method</c>. The handler's reads are given up once it has answered.
        /// </summary>
        void OnCall(uint id, object?[] p, List<Action> after)
        {
            var l = _opts.ReceiveLimits;
            if (p.Length != 3 || !(p[0] is string method) || method.Length == 0 || !(p[1] is object?[] args) || !(p[2] is object?[] at) || at.Length == 0)
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, "$call takes [method, params, uploads]"));
                return;
            }
            if (Encoding.UTF8.GetByteCount(method) > l.MaxMethodLength || args.Length > l.MaxParams)
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, "request past this client's limits"));
                return;
            }
            long last = -1;
            foreach (var x in at)
            {
                // Ascending indexes of nil params: nothing read twice, nothing of the server's overwritten.
                if (!(x is long i) || i <= last || i >= args.Length || args[i] != null)
                {
                    ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, "uploads must be ascending indexes of nil params"));
                    return;
                }
                last = i;
            }
            if (method[0] == '$' || !_handlers.TryGetValue(method, out var handler))
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.MethodNotFound, $"no handler for {method}"));
                return;
            }
            var call = new VolleyCall(this, id, method, args);
            var reads = new UploadReads(this, call);
            foreach (var x in at) args[(long)x!] = new UploadReader(reads, (int)(long)x!);
            _incoming[id] = call;
            if (_opts.HandlerTimeout is TimeSpan t && t > TimeSpan.Zero) StartHandlerDeadline(call, t);
            after.Add(Dispatch(call, WithReads(handler, reads)));
        }

        /// <summary>The handler, its reads given up once it has answered (after its stream's end, for a stream).</summary>
        static Func<VolleyCall, Task<object?>> WithReads(Func<VolleyCall, Task<object?>> handler, UploadReads reads) => async c =>
        {
            object? result;
            try
            {
                result = await handler(c).ConfigureAwait(false);
            }
            catch
            {
                reads.Close();
                throw;
            }
            if (result is IItemSource s) return new ClosingSource(s, reads);
            if (result is IAsyncEnumerable<object?> e) return new ClosingSource(new ItemSource<object?>(e), reads);
            reads.Close();
            return result;
        };
    }
}
