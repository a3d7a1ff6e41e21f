// Streams (SPEC §12), both ways, as protocol/engine/streams.ts does them. A handler
// registered with HandleStream returns an IAsyncEnumerable: its items go to the caller, who
// reads them with `await foreach` over StreamAsync. Each item is a request of the protocol's
// own, `$item [callId, value]`, from producer to reader, answered when the reader takes it.
// So an item is a reliable message (kept, re-sent once after a resume: a stream survives cuts
// with every item once, in order), the answer is the credit (at most StreamWindow items
// unanswered: a slow reader slows the producer, not the socket), an item waiting to be taken
// counts toward ReceiveLimits.MaxIncomingPending like a running call, and the stream's own
// call ends it: its response after the last item, or its error. A reader that stops early
// gives the call up ($cancel) and refuses what waits with CANCELLED; the producer's
// enumerator is then disposed. With a server that lists the feature `items` (SPEC 1.1, §11)
// several items go as one `$items [callId, [value, …]]`, answered once all were taken.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Streams;
using Volley.Wire;

namespace Volley
{
    public sealed partial class VolleyClient
    {
        /// <summary>The protocol's request carrying one item of a stream: <c>[callId, value]</c>.</summary>
        internal const string ItemMethod = "$item";

        /// <summary>
        /// Several items in one request, <c>[callId, [value, …]]</c> (SPEC §12, the feature
        /// <c>items</c> of SPEC 1.1): answered once the reader took them all, the credit for each.
        /// </summary>
        internal const string ItemsMethod = "$items";
        /// <summary>The feature this client names in <c>$features</c> when the server lists it (SPEC §11).</summary>
        internal const string ItemsFeature = "items";

        /// <summary>Items a producer sends before the first is answered (SPEC §12; each value of an <c>$items</c> counts).</summary>
        public const int StreamWindow = 16;

        /// <summary>This session named <c>items</c> in <c>$features</c> (the server listed it on its first socket).</summary>
        bool _namedItems;
        /// <summary>The server takes <c>$items</c> on this socket: named, and listed again by this socket's <c>$session</c>.</summary>
        bool _peerItems;

        // ---- reading a stream the server produces -------------------------------------------

        /// <summary>
        /// Call a server method that answers with a stream and read its items (each converted to
        /// <typeparamref name="T"/>) with <c>await foreach</c>. Each enumeration makes one call.
        /// Leaving the loop early (break, an exception) gives the call up: the server sees
        /// <c>$cancel</c> and its generator stops. Fails with VolleyRpcException: the server's
        /// error code (after the items sent before it), CANCELLED (token), DISCONNECTED,
        /// INVALID_PARAMS, OVERLOADED. No deadline: the stream lasts as long as it needs.
        /// </summary>
        public IAsyncEnumerable<T> StreamAsync<T>(string method, params object?[] args) =>
            new VolleyStream<T>(this, method, args, Timeout.InfiniteTimeSpan, CancellationToken.None);

        /// <summary>As above; the token (or the enumerator's, <c>WithCancellation</c>) stops reading: CANCELLED.</summary>
        public IAsyncEnumerable<T> StreamAsync<T>(string method, object?[]? args, CancellationToken cancellationToken) =>
            new VolleyStream<T>(this, method, args ?? Array.Empty<object?>(), Timeout.InfiniteTimeSpan, cancellationToken);

        /// <summary>As above with a deadline for the whole stream (TIMEOUT).</summary>
        public IAsyncEnumerable<T> StreamAsync<T>(string method, object?[]? args, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            new VolleyStream<T>(this, method, args ?? Array.Empty<object?>(), timeout, cancellationToken);

        /// <summary>A stream's items as decoded (see MsgPackReader for the forms).</summary>
        public IAsyncEnumerable<object?> StreamAsync(string method, params object?[] args) => StreamAsync<object?>(method, args);

        /// <summary>As <see cref="StreamAsync{T}(string, object?[], CancellationToken)"/>, items as decoded.</summary>
        public IAsyncEnumerable<object?> StreamAsync(string method, object?[]? args, CancellationToken cancellationToken) =>
            StreamAsync<object?>(method, args, cancellationToken);

        /// <summary>Sends the stream's call (an enumeration started); a call refused here ends it with its error.</summary>
        internal void StartStream(StreamCall call, object?[] args, TimeSpan timeout)
        {
            var refused = Start(call, args, timeout, CancellationToken.None);
            if (refused == null) return;
            lock (_lock) EndLocked(call, refused);
        }

        /// <summary>
        /// <c>$item [callId, value]</c> or <c>$items [callId, [value, …]]</c> arrived (under the
        /// lock, one request counted against MaxIncomingPending): its values queued for their
        /// reader, the request held in <c>_incoming</c> until the last is taken.
        /// </summary>
        void OnItem(uint id, string method, object?[] args)
        {
            object?[]? values = null;
            // At most a window's worth: more would be items the producer may not send unanswered.
            if (method == ItemsMethod && !(args.Length == 2 && (values = args[1] as object?[]) != null && values.Length >= 1 && values.Length <= StreamWindow))
            {
                ReplyError(id, new VolleyRpcException(ErrorCodes.InvalidParams, $"$items takes [callId, [1 to {StreamWindow} values]]"));
                return;
            }
            if (args.Length < 1 || !(args[0] is long callId) || callId < 0 || callId > uint.MaxValue
                || !_pending.TryGetValue((uint)callId, out var p) || !(p is StreamCall stream) || stream.Ended)
            {
                // No reader for it: a plain CallAsync of a streaming method, or a reader that stopped.
                ReplyError(id, new VolleyRpcException(ErrorCodes.Cancelled, "nobody reads this stream"));
                return;
            }
            var request = new VolleyCall(this, id, method, args);
            _incoming[id] = request;
            if (values == null) stream.Items.Enqueue(new StreamItem(request, args.Length > 1 ? args[1] : null, true));
            else
                for (var i = 0; i < values.Length; i++) stream.Items.Enqueue(new StreamItem(request, values[i], i == values.Length - 1));
            stream.Wake(); // continuations run asynchronously: nothing runs under the lock
        }

        /// <summary>
        /// The reader's next step: an item taken (answered: the producer may send one more), or
        /// null and the end (<see cref="StreamCall.Ended"/>), or null and a task to wait on.
        /// </summary>
        internal bool TryTake(StreamCall stream, out object? value, out Task? wait)
        {
            lock (_lock)
            {
                wait = null;
                if (stream.Items.Count > 0)
                {
                    var item = stream.Items.Dequeue();
                    value = item.Value;
                    var request = item.Request;
                    // The session may have ended (or a new one begun) meanwhile: then no answer.
                    // An $items is answered with its last value: one credit for all.
                    if (item.Last && _incoming.TryGetValue(request.Id, out var c) && c == request)
                    {
                        _incoming.Remove(request.Id);
                        SendReliable(MsgPackWriter.Encode(new object?[] { 1L, (long)request.Id, null, null }), null);
                    }
                    return true;
                }
                value = null;
                if (!stream.Ended) wait = stream.Waiter();
                return false;
            }
        }

        /// <summary>
        /// The reader stopped (left its loop, or its token fired: <paramref name="error"/>): the
        /// call is given up (<c>$cancel</c>), the items waiting are answered CANCELLED, and so is
        /// any arriving later (the call is no longer pending).
        /// </summary>
        internal void StopStream(StreamCall stream, VolleyRpcException? error)
        {
            bool giveUp;
            lock (_lock)
            {
                giveUp = !stream.Ended;
                EndLocked(stream, error);
                while (stream.Items.Count > 0)
                {
                    // An $items partly taken is refused too (once: its first value left removes it).
                    var item = stream.Items.Dequeue().Request;
                    if (_incoming.TryGetValue(item.Id, out var c) && c == item)
                    {
                        _incoming.Remove(item.Id);
                        ReplyError(item.Id, new VolleyRpcException(ErrorCodes.Cancelled, "the reader stopped"));
                    }
                }
            }
            // Ended first: GiveUp's Reject finds the stream ended and changes nothing.
            if (giveUp) GiveUp(stream, error ?? new VolleyRpcException(ErrorCodes.Cancelled, "the reader stopped"));
        }

        /// <summary>The stream's call settled (its response, its error, or the session's end): the reader reads what waits, then this.</summary>
        internal void EndStream(StreamCall stream, Exception? error)
        {
            lock (_lock) EndLocked(stream, error);
            if (_uploads != null) ReleaseUploads(stream); // a stream's call that passed uploads
        }

        static void EndLocked(StreamCall stream, Exception? error)
        {
            if (stream.Ended) return;
            stream.Ended = true;
            stream.Error = error;
            stream.Wake();
        }

        // ---- producing a stream the server reads ------------------------------------------

        /// <summary>
        /// A handler whose items stream to the caller (SPEC §12): at most
        /// <see cref="StreamWindow"/> unanswered, the call answered after the last one. Throwing
        /// a VolleyRpcException ends the stream with its code (after the items sent); anything
        /// else with INTERNAL (reported to OnHandlerError). The call's token fires when the reader
        /// stops (<c>$cancel</c>), the session ends, or <see cref="VolleyClientOptions.HandlerTimeout"/>
        /// (which bounds the whole stream) passes; the enumerator is then disposed.
        /// </summary>
        public void HandleStreamCall<T>(string method, Func<VolleyCall, IAsyncEnumerable<T>> handler) =>
            HandleCall(method, c => Task.FromResult<object?>(new ItemSource<T>(handler(c))));

        public void HandleStream<T>(string method, Func<CancellationToken, IAsyncEnumerable<T>> handler) =>
            HandleStreamCall(method, c => handler(c.CancellationToken));

        public void HandleStream<TArg, T>(string method, Func<TArg, CancellationToken, IAsyncEnumerable<T>> handler) =>
            HandleStreamCall(method, c => handler(c.Arg<TArg>(0), c.CancellationToken));

        public void HandleStream<TArg1, TArg2, T>(string method, Func<TArg1, TArg2, CancellationToken, IAsyncEnumerable<T>> handler) =>
            HandleStreamCall(method, c => handler(c.Arg<TArg1>(0), c.Arg<TArg2>(1), c.CancellationToken));

        /// <summary>
        /// A handler's result is a stream (a HandleStream handler's, or any
        /// IAsyncEnumerable of a reference type from HandleCall): its items go out from the app's
        /// context, where handlers run. False for any other result.
        /// </summary>
        bool TryProduce(VolleyCall call, object? result)
        {
            if (!(result is IItemSource) && !(result is IAsyncEnumerable<object?>)) return false;
            Post(() => Produce(call, result!));
            return true;
        }

        async void Produce(VolleyCall call, object source)
        {
            var producer = new ItemProducer();
            IAsyncEnumerator<object?>? items = null;
            Exception? failure = null;
            lock (_lock) producer.Batching = _peerItems;
            // $cancel, the session's end and the handler deadline fire the token: wake a wait for credit.
            using var reg = call.CancellationToken.Register(producer.Wake);
            try
            {
                items = source is IItemSource s ? s.Open(call.CancellationToken) : ((IAsyncEnumerable<object?>)source).GetAsyncEnumerator(call.CancellationToken);
                while (Live(call, producer))
                {
                    var next = items.MoveNextAsync();
                    // The batch is what the enumerator yields without suspending: it goes out before
                    // the producer waits on anything (no timer, and no item waits for a slow one).
                    if (!next.IsCompleted) SendBatch(call, producer);
                    // No ConfigureAwait(false): the app's iterator runs on its context, as its handler did.
                    if (!await next) break;
                    if (producer.Unanswered + producer.Batch.Count >= StreamWindow) SendBatch(call, producer);
                    while (true)
                    {
                        var credit = producer.Arm(); // armed before the check: no wake is missed
                        if (producer.Unanswered < StreamWindow || !Live(call, producer)) break;
                        await credit;
                    }
                    if (!Live(call, producer)) break;
                    if (producer.Batching) producer.Batch.Add(items.Current);
                    else SendItem(call, producer, items.Current);
                }
                SendBatch(call, producer);
                // The call ends after the reader took every item.
                while (true)
                {
                    var credit = producer.Arm();
                    if (producer.Unanswered == 0 || !Live(call, producer)) break;
                    await credit;
                }
            }
            catch (Exception e)
            {
                failure = e;
                // Items yielded before the enumerator threw go out before its error (SPEC §12).
                try { SendBatch(call, producer); }
                catch (Exception) { } // an item refused here: the stream fails with the first error anyway
            }
            // async void: nothing may escape.
            try
            {
                if (items != null) await items.DisposeAsync();
            }
            catch (Exception e)
            {
                failure ??= e;
            }
            try
            {
                var failed = producer.Failed ?? failure as VolleyRpcException;
                Finish(call, failed, null, failed != null ? null : failure);
            }
            catch (Exception e)
            {
                ReportHandlerError(e, call.Method);
            }
        }

        /// <summary>Still worth producing: not cancelled, timed out, ended with the session, or refused by the reader.</summary>
        static bool Live(VolleyCall call, ItemProducer producer) => !call.Aborted && !call.TimedOut && producer.Failed == null;

        /// <summary>
        /// The batch out: as one <c>$items [callId, [value, …]]</c> when it holds several and the
        /// server takes them (checked on this socket: a resume may land on an older node), else
        /// one <c>$item</c> each. A batch past the server's limits (size, values) goes one
        /// <c>$item</c> each, and the stream batches no more (its items are large).
        /// </summary>
        void SendBatch(VolleyCall call, ItemProducer producer)
        {
            var batch = producer.Batch;
            if (batch.Count == 0) return;
            try
            {
                lock (_lock)
                {
                    // Nobody reads it any more (cancelled, refused, the session ended): dropped.
                    if (!Live(call, producer) || !_incoming.TryGetValue(call.Id, out var c) || c != call) return;
                    if (batch.Count > 1 && producer.Batching && _peerItems)
                    {
                        var id = NextId();
                        try
                        {
                            var bytes = EncodeChecked(0, id, ItemsMethod, new object?[] { (long)call.Id, batch.ToArray() });
                            var items = new ItemCall(producer, batch.Count) { Id = id, Method = ItemsMethod };
                            _pending[id] = items;
                            producer.Sent(batch.Count);
                            SendReliable(bytes, items);
                            return;
                        }
                        catch (VolleyRpcException)
                        {
                            producer.Batching = false;
                        }
                    }
                    foreach (var value in batch) SendItem(call, producer, value);
                }
            }
            finally
            {
                batch.Clear();
            }
        }

        /// <summary>One item out as <c>$item [callId, value]</c>: a call of ours whose answer is the credit.</summary>
        void SendItem(VolleyCall call, ItemProducer producer, object? value)
        {
            lock (_lock)
            {
                // Cancelled, or the session ended, since the last check: nobody reads it.
                if (!_incoming.TryGetValue(call.Id, out var c) || c != call) return;
                var id = NextId();
                byte[] bytes;
                try
                {
                    bytes = EncodeChecked(0, id, ItemMethod, new object?[] { (long)call.Id, value });
                }
                catch (VolleyRpcException e)
                {
                    // Not the reader's fault: the stream ends INTERNAL, OnHandlerError sees why.
                    throw new InvalidOperationException($"{call.Method}: an item refused: {e.Message}", e);
                }
                var item = new ItemCall(producer, 1) { Id = id, Method = ItemMethod };
                _pending[id] = item;
                producer.Sent(1);
                SendReliable(bytes, item);
            }
        }
    }
}
