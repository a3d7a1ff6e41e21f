// Bytes allocated per call and calls/s of the C# client against a real Volley server:
// `dotnet run -c Release -- <ws-url> [calls] [inflight] [rounds]`. Counts every allocation
// of the process (GC.GetTotalAllocatedBytes(true): the receive and send loops run on other
// threads) over a fixed number of `CallAsync<long>("echo", i)` calls, after a warm-up, with
// `inflight` calls outstanding. Prints one JSON line per round. run.sh starts the server and
// alternates rounds with the TypeScript client (ts-bench.ts) on the same server.

using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Volley;

var url = args.Length > 0 ? args[0] : "ws://127.0.0.1:8099/";
var calls = args.Length > 1 ? int.Parse(args[1]) : 20_000;
var inflight = args.Length > 2 ? int.Parse(args[2]) : 64;
var rounds = args.Length > 3 ? int.Parse(args[3]) : 1;

// VOLLEY_BENCH_TYPES=1: also print which types the allocations were (the runtime's sampled
// AllocationTick events, one per ~100 KB), to see where the bytes go.
using var types = Environment.GetEnvironmentVariable("VOLLEY_BENCH_TYPES") == "1" ? new AllocationTypes() : null;

var opts = new VolleyClientOptions { Token = "bench" + Environment.ProcessId };
await using var closer = new AsyncCloser(await VolleyClient.ConnectAsync(url, opts));
var c = closer.Client;
var arg = new object?[1];

async Task Run(int n)
{
    var next = -1;
    async Task Worker()
    {
        var a = new object?[1];
        while (true)
        {
            var i = Interlocked.Increment(ref next);
            if (i >= n) return;
            a[0] = (long)(i & 0x3f); // small values: boxed longs under 64… still a box per call
            var r = await c.CallAsync<long>("echo", a).ConfigureAwait(false);
            if (r != (i & 0x3f)) throw new InvalidOperationException($"echo {i} answered {r}");
        }
    }
    var workers = new Task[inflight];
    for (var w = 0; w < inflight; w++) workers[w] = Worker();
    await Task.WhenAll(workers).ConfigureAwait(false);
}

await Run(Math.Min(calls, 5000)); // warm-up: JIT tiers, pools, dictionaries at size
types?.Reset();
for (var round = 0; round < rounds; round++)
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    var before = GC.GetTotalAllocatedBytes(true);
    var sw = Stopwatch.StartNew();
    await Run(calls);
    sw.Stop();
    var bytes = GC.GetTotalAllocatedBytes(true) - before;
    types?.Print();
    Console.WriteLine($"{{\"client\":\"csharp\",\"calls\":{calls},\"inflight\":{inflight},\"bytesPerCall\":{bytes / (double)calls:0},\"callsPerSec\":{calls / sw.Elapsed.TotalSeconds:0}}}");
}

sealed class AsyncCloser : IAsyncDisposable
{
    public VolleyClient Client { get; }
    public AsyncCloser(VolleyClient c) => Client = c;
    public async ValueTask DisposeAsync() => await Client.CloseAsync();
}

sealed class AllocationTypes : System.Diagnostics.Tracing.EventListener
{
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _bytes = new();

    protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
    }

    protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
    {
        if (e.EventName != "GCAllocationTick_V4" || e.Payload == null) return;
        var name = e.PayloadNames!.IndexOf("TypeName") is var i and >= 0 ? e.Payload[i] as string ?? "?" : "?";
        var amount = e.PayloadNames!.IndexOf("AllocationAmount64") is var j and >= 0 ? Convert.ToInt64(e.Payload[j]) : 100_000;
        _bytes.AddOrUpdate(name, amount, (_, v) => v + amount);
    }

    public void Reset() => _bytes.Clear();

    public void Print()
    {
        var total = _bytes.Values.Sum();
        foreach (var kv in _bytes.OrderByDescending(kv => kv.Value).Take(15))
            Console.Error.WriteLine($"  {kv.Value * 100.0 / Math.Max(1, total),5:0.0}%  {kv.Key}");
    }
}
