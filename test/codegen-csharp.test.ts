// The C# that volley-codegen writes, compiled the way Unity compiles a package (netstandard2.1,
// C# 9, nullable on, warnings as errors) and run against a real Volley server: every type form
// of test/fixtures/codegen-everyForm.ts crosses the wire both ways through the typed proxy and
// the typed handlers (calls from the server too, notifications both ways, a stream the client
// produces, uploads both ways), omitted optional params stay omitted, and values that don't
// convert fail their call (INTERNAL at the caller, or INVALID_PARAMS back to the server)
// instead of hanging it.
// Skips without a dotnet SDK.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readContract } from '../codegen/model.ts';
import { emitCSharp } from '../codegen/csharp.ts';
import { startServer, type Harness } from './helpers.ts';
import type { Color, Item, KitClient, KitServer, Vec } from './fixtures/codegen-everyForm.ts';
import type { RpcError } from '../server/index.ts';

t.setTimeout(400_000);
const root = fileURLToPath(new URL('..', import.meta.url));
const hasDotnet = spawnSync('dotnet', ['--version'], { encoding: 'utf8' }).status === 0;

const PROGRAM = String.raw`
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KitGame;
using Volley;
using Volley.Wire;

static class Run
{
    static int failures;
    static void Check(bool ok, string what)
    {
        Console.WriteLine((ok ? "ok " : "FAIL ") + what);
        if (!ok) failures++;
    }
    static string Bytes(object? wire) => Convert.ToBase64String(MsgPackWriter.Encode(wire));

    internal static Item MakeItem(long id) => new Item
    {
        Id = id, Name = "ü ✓", Flag = true, Tags = new[] { "a", "b" }, Color = Color.DarkBlue, Alt = null,
        Shade = Color.Green, Mood = ItemMood.Angry, Pos = new Vec(1.5, -2), Path = new[] { new Vec(0, 0), new Vec(3, 4) },
        Grid = new[] { new double[] { 1, 2 }, new double[0] },
        Stats = new Dictionary<string, double> { ["hp"] = 10, ["mp"] = 2.5 },
        Owners = new Dictionary<string, Vec?> { ["alice"] = new Vec(1, 1), ["bob"] = null },
        Note = "n", Nick = null, Maybe = false, Big = null, Blob = new byte[] { 0, 1, 255 },
        At = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc),
        Extra = new Dictionary<string, object?> { ["k"] = new object?[] { 1L, "x" } },
        Meta = new ItemMeta(3, new[] { "h" }),
    };

    sealed class Client : IKitClient
    {
        public TaskCompletionSource<double> Pinged = new TaskCompletionSource<double>();
        public string? Received;
        public Task<Item> Transform(Item item, long by, CancellationToken ct)
        {
            Received = Bytes(item.ToWire());
            item.Id += by;
            item.Name = item.Name.ToUpperInvariant();
            item.Color = Color.Red;
            item.Alt = Color.Green;
            return Task.FromResult(item);
        }
        public void Ping(double n) => Pinged.TrySetResult(n);
        public async IAsyncEnumerable<Vec> Path(long n, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            for (var i = 0; i < n; i++)
            {
                await Task.Yield();
                yield return new Vec(i, 2 * i);
            }
        }
        public async Task<double> Total(IAsyncEnumerable<Vec> vs, CancellationToken ct)
        {
            double sum = 0;
            await foreach (var v in vs.WithCancellation(ct)) sum += v.X + v.Y;
            return sum;
        }
        public string Kept = "";
        public async Task Keep(IAsyncEnumerable<string> tags, CancellationToken ct)
        {
            var all = new List<string>();
            await foreach (var x in tags.WithCancellation(ct)) all.Add(x);
            Kept = string.Join(",", all);
        }
    }

    static async IAsyncEnumerable<T> Up<T>(params T[] items)
    {
        foreach (var x in items)
        {
            await Task.Yield();
            yield return x;
        }
    }

    static async Task<int> Main(string[] args)
    {
        var impl = new Client();
        var client = await VolleyClient.ConnectAsync(args[0], new VolleyClientOptions { Token = "u:cs", Converters = Kit.Converters() }, c => Kit.Bind(c, impl));
        IKitServer server = new Kit.ServerProxy(client);

        var item = MakeItem(9007199254740991);
        var echoed = await server.EchoItem(item);
        Check(Bytes(echoed.ToWire()) == Bytes(item.ToWire()), "echoItem: every field back as sent");
        Check(echoed.Alt == null && echoed.Big == null && echoed.Nick == null && echoed.Owners["bob"] == null && echoed.Shade == Color.Green, "echoItem: nulls and absent optionals");
        Check(echoed.Id == 9007199254740991 && echoed.Grid[1].Length == 0 && echoed.Blob[2] == 255 && echoed.At == item.At, "echoItem: integers, nested arrays, binary, dates");

        Check(await server.Sum(new double[] { 1, 2, 3 }) == 6 && await server.LastSumArity() == 1, "sum: an omitted optional param is not sent");
        Check(await server.Sum(new double[] { 1, 2, 3 }, 2) == 12 && await server.LastSumArity() == 2, "sum: a given optional param is");
        Check(await server.Pick(new Color[0]) == null && await server.Pick(new[] { Color.DarkBlue, Color.Red }) == Color.DarkBlue, "pick: nullable enum result");
        var a = await server.Inline(new InlineArg { A = "x" });
        Check(a.Ok && a.A == "x" && a.B == null, "inline: omitted optional field not written");
        var b = await server.Inline(new InlineArg("y", 5));
        Check(b.Ok && b.A == "y" && b.B == 5, "inline: optional field written");
        await server.Nothing();
        Check(true, "nothing: void result");

        var sent = MakeItem(41);
        var back = await server.RoundTrip(sent, 7);
        Check(impl.Received == Bytes(MakeItem(41).ToWire()), "roundTrip: the client handler got the item as sent");
        Check(back.Id == 48 && back.Name == "Ü ✓" && back.Color == Color.Red && back.Alt == Color.Green, "roundTrip: the handler's result reached the server and came back");

        await server.PingMe(2.5);
        var done = await Task.WhenAny(impl.Pinged.Task, Task.Delay(5000));
        Check(done == impl.Pinged.Task && impl.Pinged.Task.Result == 2.5, "pingMe: the notification reached the typed handler");
        impl.Pinged = new TaskCompletionSource<double>();
        ((Kit.ServerProxy)server).NotifyPingMe(3.5);
        done = await Task.WhenAny(impl.Pinged.Task, Task.Delay(5000));
        Check(done == impl.Pinged.Task && impl.Pinged.Task.Result == 3.5, "NotifyPingMe: the typed notification reached the server, whose ping came back");
        Check(await server.Walk(20) == 570, "walk: the server read the client's typed stream path(20), each Vec converted");

        var sv = await server.SumVecs("v", Up(Enumerable.Range(0, 10).Select(i => new Vec(i, 2 * i)).ToArray()));
        Check(sv.Label == "v" && sv.Count == 10 && sv.Sum == 135, "sumVecs: the server read the typed upload, each Vec converted on its way out");
        await server.PaintAll(Up(Color.Red, Color.DarkBlue, Color.Green));
        Check(string.Join(",", await server.Painted()) == "Red,DarkBlue,Green", "paintAll: a method without a result took its upload as a call");
        try
        {
            await server.PaintAll(Up(Color.Red, (Color)99)).WaitAsync(TimeSpan.FromSeconds(5));
            Check(false, "paintAll((Color)99): should fail");
        }
        catch (VolleyRpcException e)
        {
            Check(e.Code == ErrorCodes.Internal, "paintAll((Color)99): an item that can't go out fails the upload, and the call with it: " + e.Code + " " + e.Message);
        }
        var bumped = new List<Item>();
        await foreach (var it in server.Bump(5, Up(MakeItem(1), MakeItem(2), MakeItem(3)))) bumped.Add(it);
        Check(string.Join(",", bumped.Select(x => x.Id)) == "6,7,8" && Bytes(bumped[2].ToWire()) == Bytes(MakeItem(8).ToWire()), "bump: an upload of Items read while the Items stream back");
        Check(await server.UploadToClient(20) == 570, "uploadToClient: the server's upload reached the typed handler total, each Vec converted on its way in");
        Check(impl.Kept == "a,b,c", "uploadToClient: keep, a handler without a result, read the server's upload: " + impl.Kept);
        var badUp = await server.BadUpload();
        Check(badUp.Length == 2 && badUp[0].StartsWith("INVALID_PARAMS") && badUp[0].Contains("total: an upload item does not convert: Vec.x: expected a number, got 'no'"), "badUpload: an item that doesn't convert fails the read INVALID_PARAMS, naming the method: " + badUp[0]);
        Check(badUp.Length == 2 && badUp[1].StartsWith("INVALID_PARAMS") && badUp[1].Contains("param 0 is not an upload"), "badUpload: a plain value where the upload goes is INVALID_PARAMS: " + badUp[1]);
        var rep = new List<string>();
        await foreach (var x in server.Repeat("r", 2)) rep.Add(x);
        Check(await server.Names(1, "e", 2.5, "i") == "1 e 2.5 i" && string.Join(",", rep) == "r,r", "names, repeat: params named w, e, t, item, items");

        try
        {
            await server.Broken().WaitAsync(TimeSpan.FromSeconds(5));
            Check(false, "broken: should fail");
        }
        catch (VolleyRpcException e)
        {
            Check(e.Code == ErrorCodes.Internal && e.Message.Contains("Vec.x: expected a number, got 'no'"), "broken: INTERNAL naming the field: " + e.Message);
        }
        var bad = await server.BadCall();
        Check(bad.StartsWith("INVALID_PARAMS") && bad.Contains("Item.name: expected a string"), "badCall: INVALID_PARAMS to the server: " + bad);
        Check(client.State == ConnectionState.Open, "the session is still open");
        await client.CloseAsync();
        Console.WriteLine(failures == 0 ? "ALL OK" : failures + " FAILED");
        return failures == 0 ? 0 : 1;
    }
}
`;

t.test('generated C# compiles as Unity would and runs every form against a real server', { skip: hasDotnet ? false : 'no dotnet SDK' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'volley-codegen-cs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cs = emitCSharp(readContract(join(root, 'test/fixtures/codegen-everyForm.ts')), { namespace: 'KitGame', source: 'codegen-everyForm.ts' });
  writeFileSync(join(dir, 'Kit.g.cs'), cs);
  const volley = join(root, 'csharp/Volley/Volley.csproj');
  writeFileSync(join(dir, 'KitContract.csproj'), `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>netstandard2.1</TargetFramework><LangVersion>9.0</LangVersion><!-- no Nullable: as Unity; the file opts in -->
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors><EnableDefaultCompileItems>false</EnableDefaultCompileItems>
  </PropertyGroup>
  <ItemGroup><Compile Include="Kit.g.cs" /><ProjectReference Include="${volley}" /></ItemGroup>
</Project>`);
  const runDir = join(dir, 'run');
  spawnSync('mkdir', ['-p', runDir]);
  writeFileSync(join(runDir, 'Program.cs'), PROGRAM);
  writeFileSync(join(runDir, 'KitRun.csproj'), `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><LangVersion>latest</LangVersion></PropertyGroup>
  <ItemGroup><ProjectReference Include="../KitContract.csproj" /><ProjectReference Include="${volley}" /></ItemGroup>
</Project>`);

  const build = spawnSync('dotnet', ['build', join(runDir, 'KitRun.csproj'), '-c', 'Release', '-nologo', '-v', 'q'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' } });
  const buildOut = build.stdout + build.stderr;
  t.equal(build.status, 0, 'the generated file and the program build');
  t.match(buildOut, /0 Warning\(s\)/, 'netstandard2.1 / C# 9 / no Nullable property (as Unity) / warnings-as-errors: no warning');
  if (build.status !== 0) {
    t.comment(buildOut.split('\n').filter((l) => /error|warning/.test(l)).slice(0, 20).join('\n'));
    return;
  }

  let arity = 0;
  let painted: Color[] = [];
  async function* upload<T>(items: T[]): AsyncGenerator<T> {
    for (const x of items) yield x;
  }
  let lastBad: string | undefined;
  const pings: number[] = [];
  const h: Harness<KitServer, KitClient> = await startServer<KitServer, KitClient>({
    handlers: {
      echoItem: (_ctx, item) => item,
      sum: (_ctx, ...args: [number[], number?]) => {
        arity = args.length;
        return args[0].reduce((x, y) => x + y, 0) * (args[1] ?? 1);
      },
      lastSumArity: () => arity,
      pick: (_ctx, colors) => colors[0] ?? null,
      inline: (_ctx, arg) => ({ ok: !('b' in arg) || typeof arg.b === 'number', a: arg.a, b: arg.b ?? null }),
      nothing: () => {},
      roundTrip: (ctx, item, by): Promise<Item> => h.server.call(ctx.uid, 'transform', [item, by]),
      pingMe: (ctx, n) => {
        pings.push(n);
        h.server.notify(ctx.uid, 'ping', n);
      },
      walk: async (ctx, n) => {
        let sum = 0;
        for await (const v of h.server.stream(ctx.uid, 'path', [n])) sum += v.x + v.y;
        return sum;
      },
      sumVecs: async (_ctx, label, vs) => {
        let count = 0;
        let sum = 0;
        for await (const v of vs) {
          count++;
          sum += v.x + v.y;
        }
        return { label, count, sum };
      },
      paintAll: async (_ctx, colors) => {
        const got: Color[] = [];
        for await (const c of colors) got.push(c);
        painted = got;
      },
      painted: () => painted,
      bump: async function* (_ctx, by, items) {
        for await (const it of items) yield { ...it, id: it.id + by };
      },
      uploadToClient: async (ctx, n) => {
        const sum = await h.server.call(ctx.uid, 'total', [upload(Array.from({ length: n }, (_, i) => ({ x: i, y: 2 * i })))]);
        await h.server.call(ctx.uid, 'keep', [upload(['a', 'b', 'c'])]);
        return sum;
      },
      badUpload: async (ctx) => {
        const errors: string[] = [];
        for (const args of [[upload([{ x: 1, y: 1 }, { x: 'no', y: 1 } as never])], [[{ x: 1, y: 1 }] as never]] as [AsyncIterable<Vec>][]) {
          try {
            await h.server.call(ctx.uid, 'total', args, { timeoutMs: 5000 });
            errors.push('answered');
          } catch (err) {
            errors.push(`${(err as RpcError).code}: ${(err as Error).message}`);
          }
        }
        return errors;
      },
      names: (_ctx, w, e, tt, item) => `${w} ${e} ${tt} ${item}`,
      repeat: async function* (_ctx, items, n) {
        for (let i = 0; i < n; i++) yield items;
      },
      broken: () => ({ x: 'no', y: 1 }) as never,
      badCall: async (ctx) => {
        try {
          await h.server.call(ctx.uid, 'transform', [{ id: 1, name: 7 } as unknown as Item, 1]);
          return 'answered';
        } catch (err) {
          lastBad = `${(err as RpcError).code}: ${(err as Error).message}`;
          return lastBad;
        }
      },
    },
  });
  t.teardown(() => h.close());

  const run = spawn('dotnet', [join(runDir, 'bin/Release/net10.0/KitRun.dll'), h.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The checks print on stdout; the client's log (a handler's error and its stack) goes to
  // stderr, kept apart: merged, a log line landed in the middle of a check's line in a CI
  // trial and the count read 25.
  let out = '';
  let err = '';
  run.stdout.on('data', (d) => (out += d));
  run.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => run.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
  clearTimeout(timer);
  t.comment(out.trim());
  if (err.trim()) t.comment(`stderr:\n${err.trim()}`);
  t.equal(code, 0, 'the C# program passed every check');
  t.match(out, /ALL OK/);
  t.notMatch(out, /FAIL/);
  t.equal((out.match(/^ok /gm) ?? []).length, 26, 'all 26 checks ran');
  t.match(lastBad, /^INVALID_PARAMS/, 'the server saw INVALID_PARAMS from the C# handler');
  t.same(pings, [2.5, 3.5], 'pingMe ran once as a call, once as a notification');
  t.ok(readFileSync(join(dir, 'Kit.g.cs'), 'utf8').length > 0);
});
