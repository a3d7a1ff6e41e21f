// The bench's SignalR system: what servers/host.ts does for the Node systems, in the
// server's own process. A hub (/hub, MessagePack) answers the clients' calls; /ctl/* (JSON,
// the same Kestrel) is how bench/servers/signalr.ts asks for snapshots and server-driven
// load: server → client calls with a result (client results, InvokeAsync), a call to every
// client gathered (one InvokeAsync each), room broadcasts (groups), the game loop; streams
// both ways and the same items as notifications (bench/lib/streams.ts, bench/streams.ts).
// Environment: BENCH_ROOM=1 puts every client in group "all"; BENCH_GAME_ROOM_SIZE=n puts
// players in groups g0, g1, … of n by order of arrival (as bench/lib/game.ts).

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.SignalR;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.UseUrls("http://127.0.0.1:0");
builder.Services.AddSignalR(o => o.MaximumReceiveMessageSize = 1024 * 1024).AddMessagePackProtocol();
builder.Services.AddSingleton<Bench>();
var app = builder.Build();
app.UseWebSockets();
app.MapHub<BenchHub>("/hub");

var bench = app.Services.GetRequiredService<Bench>();
app.MapGet("/ctl/snap", () => bench.Snap());
app.MapPost("/ctl/gc", () => { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); return Results.Ok(new { }); });
app.MapPost("/ctl/mark", () => { bench.Mark(); return Results.Ok(new { }); });
app.MapPost("/ctl/drive", (string scenario, int maxMs, int rate, int payloadBytes) => bench.Drive(scenario, maxMs, rate, payloadBytes));
app.MapPost("/ctl/stop", async () => await bench.Stop());

await app.StartAsync();
var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
Console.WriteLine($"PORT {new Uri(address).Port}");
Console.Out.Flush();
await app.WaitForShutdownAsync();

public class BenchHub(Bench bench) : Hub
{
    public override async Task OnConnectedAsync()
    {
        var id = Context.ConnectionId;
        int arrival = bench.Arrive(id);
        if (Bench.InRoom) await Groups.AddToGroupAsync(id, "all");
        if (Bench.GameRoomSize > 0) await Groups.AddToGroupAsync(id, $"g{arrival / Bench.GameRoomSize}");
    }

    public override Task OnDisconnectedAsync(Exception? e)
    {
        bench.Leave(Context.ConnectionId);
        return Task.CompletedTask;
    }

    public int Add(int a, int b)
    {
        Interlocked.Increment(ref bench.Handled);
        return a + b;
    }

    public object? Echo(object? x)
    {
        Interlocked.Increment(ref bench.Handled);
        return x;
    }

    public void Input(int seq, double dx, double dy) => Interlocked.Increment(ref bench.Inputs);

    public Dictionary<string, object> Act(int kind, double x, double y)
    {
        Interlocked.Increment(ref bench.Acts);
        return new Dictionary<string, object> { ["ok"] = true, ["tick"] = bench.Ticks };
    }

    // stream-down: n items as a server → client stream (the client's connection.stream).
#pragma warning disable CS1998 // an async iterator that never awaits: SignalR writes each item as it is yielded
    public async IAsyncEnumerable<StreamItem> Feed(int n, [EnumeratorCancellation] CancellationToken ct)
    {
        for (int i = 0; i < n && !ct.IsCancellationRequested; i++) yield return Bench.NewItem(i);
    }
#pragma warning restore CS1998

    // stream-up: a client → server stream (the client invokes it with a Subject). SignalR has
    // no flow control on it: acked as the notifications are (bench/lib/streams.ts).
    public async Task Upload(IAsyncEnumerable<StreamItem> items)
    {
        var caller = Clients.Caller;
        await foreach (var it in items)
        {
            bench.Received(it);
            if ((it.seq + 1) % Bench.AckEvery == 0) await caller.SendAsync("ack", it.seq + 1);
        }
    }

    // notify-up: one item as a notification (connection.send); notify-down's acks.
    public async Task Item(StreamItem it)
    {
        bench.Received(it);
        if ((it.seq + 1) % Bench.AckEvery == 0) await Clients.Caller.SendAsync("ack", it.seq + 1);
    }

    public void Ack(int n) => bench.Ack(Context.ConnectionId, n);
}

/** A stream item, as bench/lib/streams.ts: a map {seq, t, payload} (SignalR's contractless MessagePack resolver keys it by these names). */
public class StreamItem
{
    public int seq { get; set; }
    /** Send time, µs, monotonic (one-way latency). */
    public double t { get; set; }
    public byte[] payload { get; set; } = [];
}

/** notify-down: at most Bench.Window items unacknowledged per connection. */
public class SendWindow
{
    public readonly SemaphoreSlim Credits = new(Bench.Window);
    int acked;

    public void Ack(int n)
    {
        int before = Interlocked.Exchange(ref acked, n);
        if (n > before) Credits.Release(n - before);
    }
}

public class Bench(IHubContext<BenchHub> hub)
{
    public static readonly bool InRoom = Environment.GetEnvironmentVariable("BENCH_ROOM") == "1";
    public static readonly int GameRoomSize = int.TryParse(Environment.GetEnvironmentVariable("BENCH_GAME_ROOM_SIZE"), out var n) ? n : 0;
    const int MaxSamples = 500_000;
    /** bench/lib/streams.ts STREAMS: the notification window and its acks. */
    public const int Window = 64, AckEvery = 16;
    static readonly byte[] Payload = Enumerable.Repeat((byte)0x2a, 16).ToArray();

    public long Handled, Inputs, Acts;
    public int Ticks;
    long calls, callsOk, callsFailed, errors, inFlight;
    readonly List<string> ids = [];
    int arrivals;
    ConcurrentQueue<long> samples = new();
    CancellationTokenSource stop = new();
    Task? driver;
    readonly ConcurrentDictionary<string, SendWindow> windows = new();

    public int Arrive(string id)
    {
        lock (ids) { ids.Add(id); return arrivals++; }
    }

    public void Leave(string id)
    {
        lock (ids) ids.Remove(id);
    }

    string[] Ids() { lock (ids) return [.. ids]; }

    /** Monotonic µs, CLOCK_MONOTONIC as the Node processes' process.hrtime (bench/lib/payload.ts nowUs). */
    static long NowUs() => (long)(Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000.0));

    public object Snap()
    {
        var p = Process.GetCurrentProcess();
        return new
        {
            t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            cpuUs = (long)p.TotalProcessorTime.TotalMicroseconds,
            rss = p.WorkingSet64,
            heapUsed = GC.GetTotalMemory(false),
            count = Interlocked.Read(ref Handled),
            conns = Ids().Length,
            game = new { ticks = Ticks, inputs = Interlocked.Read(ref Inputs), acts = Interlocked.Read(ref Acts), calls, callsOk, callsFailed },
        };
    }

    public void Mark()
    {
        samples = new ConcurrentQueue<long>();
        Interlocked.Exchange(ref errors, 0);
    }

    void Sample(long t0)
    {
        if (samples.Count < MaxSamples) samples.Enqueue(Math.Max(1, NowUs() - t0));
    }

    public static StreamItem NewItem(int seq) => new() { seq = seq, t = NowUs(), payload = Payload };

    /** stream-up, notify-up: an item reached the server (counted, its one-way latency sampled). */
    public void Received(StreamItem it)
    {
        Interlocked.Increment(ref Handled);
        Sample((long)it.t);
    }

    public void Ack(string id, int n)
    {
        if (windows.TryGetValue(id, out var w)) w.Ack(n);
    }

    public object Drive(string scenario, int maxMs, int rate, int payloadBytes)
    {
        stop = new CancellationTokenSource(maxMs);
        var ct = stop.Token;
        var clients = Ids();
        driver = scenario switch
        {
            "server-calls" => Task.WhenAll(clients.Select(id => CallLoop(id, "add", [1, 2], ct))),
            "server-calls-1kb" => Task.WhenAll(clients.Select(id => CallLoop(id, "echo", [ObjectPayload(payloadBytes)], ct))),
            "call-many" => CallMany(ct),
            "broadcast" => Broadcast(rate, ct),
            "game-tick" when GameRoomSize > 0 => Game(clients.Length, ct),
            "notify-down" => Task.WhenAll(clients.Select(id => NotifyLoop(id, ct))),
            _ => throw new ArgumentException($"the server does not drive {scenario}"),
        };
        return new { clients = clients.Length };
    }

    public async Task<object> Stop()
    {
        stop.Cancel();
        var end = DateTime.UtcNow.AddSeconds(3);
        while (Interlocked.Read(ref inFlight) > 0 && DateTime.UtcNow < end) await Task.Delay(10);
        return new { samples = samples.ToArray(), errors = Interlocked.Read(ref errors), unfinished = Interlocked.Read(ref inFlight) };
    }

    async Task CallLoop(string id, string method, object[] args, CancellationToken ct)
    {
        await Task.Yield();
        var client = hub.Clients.Client(id);
        while (!ct.IsCancellationRequested)
        {
            long t0 = NowUs();
            Interlocked.Increment(ref inFlight);
            try
            {
                // Client results: the call waits for the client's return value.
                if (method == "add") await client.InvokeAsync<int>("add", args[0], args[1], CancellationToken.None);
                else await client.InvokeAsync<object>("echo", args[0], CancellationToken.None);
                Sample(t0);
                Interlocked.Increment(ref Handled);
            }
            catch
            {
                Interlocked.Increment(ref errors);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    }

    async Task NotifyLoop(string id, CancellationToken ct)
    {
        // notify-down: the stream's items as notifications, flat out within the window.
        await Task.Yield();
        var w = windows[id] = new SendWindow();
        var client = hub.Clients.Client(id);
        int seq = 0;
        Interlocked.Increment(ref inFlight);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await w.Credits.WaitAsync(ct);
                await client.SendAsync("item", NewItem(seq++), CancellationToken.None);
            }
        }
        catch (OperationCanceledException) { }
        catch
        {
            Interlocked.Increment(ref errors);
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }

    async Task CallMany(CancellationToken ct)
    {
        await Task.Yield();
        while (!ct.IsCancellationRequested)
        {
            var clients = Ids();
            long t0 = NowUs();
            Interlocked.Increment(ref inFlight);
            try
            {
                // SignalR has no call-many: one InvokeAsync per client, gathered; each outcome its own.
                var tasks = clients.Select(id => hub.Clients.Client(id).InvokeAsync<int>("add", 1, 2, CancellationToken.None)).ToArray();
                try { await Task.WhenAll(tasks); } catch { }
                if (tasks.Any(t => !t.IsCompletedSuccessfully)) Interlocked.Increment(ref errors);
                else Sample(t0);
                Interlocked.Add(ref Handled, clients.Length); // CPU per call counts each client's reply
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    }

    async Task Broadcast(int rate, CancellationToken ct)
    {
        // Paced by the clock, as servers/host.ts: the same broadcasts for every system.
        var start = Stopwatch.StartNew();
        long sent = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                long due = Math.Min((long)(start.ElapsedMilliseconds * rate / 1000.0) - sent, Math.Max(1, rate / 10));
                int n = Ids().Length;
                for (long k = 0; k < due; k++)
                {
                    _ = hub.Clients.Group("all").SendAsync("tick", NowUs());
                    sent++;
                    Interlocked.Add(ref Handled, n);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    async Task Game(int players, CancellationToken ct)
    {
        // bench/lib/game.ts's gameLoop: 20 ticks a second to every room (its state), and each
        // player called once per 10 s (`ready`, 2 s deadline), spread over the ticks.
        int roomCount = (players + GameRoomSize - 1) / GameRoomSize;
        var rooms = Enumerable.Range(0, roomCount).Select(r => (name: $"g{r}", state: RoomState(r, GameRoomSize))).ToArray();
        var clients = Ids();
        double callsPerTick = players / (20.0 * 10_000 / 1000);
        double owed = 0;
        int sent = 0, next = 0;
        var start = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                int due = Math.Min((int)(start.ElapsedMilliseconds * 20 / 1000) - sent, 20);
                for (int k = 0; k < due; k++)
                {
                    int tick = ++sent;
                    Ticks = tick;
                    long t = NowUs();
                    foreach (var (name, state) in rooms)
                    {
                        state["t"] = t;
                        state["tick"] = tick;
                        _ = hub.Clients.Group(name).SendAsync("state", state);
                    }
                    for (owed += callsPerTick; owed >= 1; owed--) _ = CallPlayer(clients[next++ % clients.Length], tick);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    async Task CallPlayer(string id, int tick)
    {
        Interlocked.Increment(ref calls);
        Interlocked.Increment(ref inFlight);
        using var deadline = new CancellationTokenSource(2000);
        try
        {
            await hub.Clients.Client(id).InvokeAsync<bool>("ready", tick, deadline.Token);
            Interlocked.Increment(ref callsOk);
        }
        catch
        {
            Interlocked.Increment(ref callsFailed);
            Interlocked.Increment(ref errors);
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }

    static Dictionary<string, object> RoomState(int room, int size)
    {
        var players = Enumerable.Range(0, size).Select(i => new object[] { room * size + i, 100.25 + i * 3.5, -40.75 + room * 0.5, 100 - i }).ToArray();
        return new Dictionary<string, object> { ["t"] = 0L, ["tick"] = 0, ["room"] = room, ["players"] = players };
    }

    /** bench/lib/payload.ts objectPayload: the same object, so every system carries the same bytes. */
    static Dictionary<string, object> ObjectPayload(int bytes)
    {
        int n = Math.Max(0, (int)Math.Round((bytes - 60) / 33.0));
        var items = Enumerable.Range(0, n).Select(i => (object)new Dictionary<string, object> { ["id"] = i, ["kind"] = $"item{i % 10}", ["qty"] = i % 7, ["pos"] = new object[] { i, i * 2 } }).ToArray();
        return new Dictionary<string, object>
        {
            ["player"] = "player-000042", ["hp"] = 87, ["level"] = 12,
            ["pos"] = new Dictionary<string, object> { ["x"] = 103.5, ["y"] = -20.25, ["z"] = 7 },
            ["items"] = items,
        };
    }
}
