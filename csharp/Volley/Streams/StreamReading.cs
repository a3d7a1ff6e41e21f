// The reader's side of a stream (SPEC §12): the stream's call, the items received and not
// yet taken, and the enumerator `await foreach` drives. The client's lock guards the call's
// state; the logic lives in VolleyClient.Streams.cs.

#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley.Wire;

namespace Volley.Streams
{
    /// <summary>A call read as a stream: pending until its response, holding the items that wait for the reader.</summary>
    internal sealed class StreamCall : PendingCall
    {
        readonly VolleyClient _client;
        TaskCompletionSource<bool>? _waiter;

        public StreamCall(VolleyClient client, string method)
        {
            _client = client;
            Method = method;
        }

        /// <summary>Items received, not yet taken (each request also in the client's incoming calls until then).</summary>
        public readonly Queue<StreamItem> Items = new Queue<StreamItem>();
        /// <summary>No item comes any more: the call settled, or the reader stopped.</summary>
        public bool Ended;
        /// <summary>Why it ended, null for the stream's normal end; thrown after the items that wait.</summary>
        public Exception? Error;

        /// <summary>A task completed by the next item or the end (under the client's lock).</summary>
        public Task Waiter() => (_waiter ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

        /// <summary>Under the client's lock; the reader's continuation runs elsewhere (asynchronously).</summary>
        public void Wake()
        {
            var w = _waiter;
            _waiter = null;
            w?.TrySetResult(true);
        }

        public override Task Task => Task.CompletedTask;
        public override void Resolve(object? wire) => _client.EndStream(this, null);
        public override void Reject(Exception e) => _client.EndStream(this, e);
    }

    /// <summary>
    /// One value waiting for the reader, and the request that carried it: an <c>$item</c>, or
    /// an <c>$items</c> with several (answered when its last value is taken: the credit for all).
    /// </summary>
    internal readonly struct StreamItem
    {
        public readonly VolleyCall Request;
        public readonly object? Value;
        public readonly bool Last;

        public StreamItem(VolleyCall request, object? value, bool last)
        {
            Request = request;
            Value = value;
            Last = last;
        }
    }

    /// <summary>What StreamAsync returns: each enumeration calls the method once.</summary>
    internal sealed class VolleyStream<T> : IAsyncEnumerable<T>
    {
        readonly VolleyClient _client;
        readonly string _method;
        readonly object?[] _args;
        readonly TimeSpan _timeout;
        readonly CancellationToken _token;

        public VolleyStream(VolleyClient client, string method, object?[] args, TimeSpan timeout, CancellationToken token)
        {
            _client = client;
            _method = method;
            _args = args;
            _timeout = timeout;
            _token = token;
        }

        public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
            new StreamReader<T>(_client, _method, _args, _timeout, _token, cancellationToken);
    }

    internal sealed class StreamReader<T> : IAsyncEnumerator<T>
    {
        readonly VolleyClient _client;
        readonly StreamCall _call;
        CancellationTokenRegistration _reg1, _reg2;
        T _current = default!;

        public StreamReader(VolleyClient client, string method, object?[] args, TimeSpan timeout, CancellationToken token1, CancellationToken token2)
        {
            _client = client;
            _call = new StreamCall(client, method);
            if (token1.IsCancellationRequested || token2.IsCancellationRequested)
            {
                _call.Ended = true;
                _call.Error = Cancelled();
                return;
            }
            client.StartStream(_call, args, timeout);
            // Either token stops the reading: the call given up, what waits refused, CANCELLED thrown.
            if (token1.CanBeCanceled) _reg1 = token1.Register(Stop);
            if (token2.CanBeCanceled) _reg2 = token2.Register(Stop);
        }

        /// <summary>The stream's call (an upload's reads give it up when their call ends).</summary>
        internal StreamCall Call => _call;

        VolleyRpcException Cancelled() => new VolleyRpcException(ErrorCodes.Cancelled, $"{_call.Method}: reading the stream was cancelled");

        void Stop() => _client.StopStream(_call, Cancelled());

        public T Current => _current;

        public async ValueTask<bool> MoveNextAsync()
        {
            while (true)
            {
                if (_client.TryTake(_call, out var value, out var wait))
                {
                    _current = Convert(value);
                    return true;
                }
                if (wait == null)
                {
                    if (_call.Error != null) throw _call.Error;
                    return false;
                }
                await wait.ConfigureAwait(false);
            }
        }

        T Convert(object? wire)
        {
            try
            {
                return _client.Converters.FromWire<T>(wire);
            }
            catch (Exception e)
            {
                // Whatever the app's converter throws fails this read (the loop's exit stops the stream).
                var why = e is WireConversionException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                throw new VolleyRpcException(ErrorCodes.Internal, $"{_call.Method}: an item does not convert to {typeof(T).Name}: {why}", null, e);
            }
        }

        public ValueTask DisposeAsync()
        {
            _reg1.Dispose();
            _reg2.Dispose();
            _client.StopStream(_call, null);
            return default;
        }
    }
}
