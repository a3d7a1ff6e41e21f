// volley-codegen (codegen/): the TypeScript contract read with the compiler API, and the C#
// it writes. The demo's generated file (the C# sample bot's) must be what the generator
// writes today, byte for byte; every supported type form maps as documented; every
// unsupported form fails with an error naming the member. The generated C# is compiled and
// run against a real server in test/codegen-csharp.test.ts.

import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readContract, ContractError, type TypeRef } from '../codegen/model.ts';
import { emitCSharp } from '../codegen/csharp.ts';
import { main } from '../codegen/cli.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volley-codegen-'));
const write = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const quiet = async (argv: string[]) => {
  const err = console.error;
  const lines: string[] = [];
  console.error = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { code: await main(argv), out: lines.join('\n') };
  } finally {
    console.error = err;
  }
};

t.test('the sample bot uses what the generator writes from demo/api.ts, byte for byte', async (t) => {
  const committed = readFileSync(join(root, 'csharp/Volley.Sample/Arena.g.cs'), 'utf8');
  const now = emitCSharp(readContract(join(root, 'demo/api.ts')), { namespace: 'Volley.Sample', source: 'api.ts' });
  t.equal(now, committed, 'csharp/Volley.Sample/Arena.g.cs is stale: npm run codegen:sample');
  const r = await quiet(['csharp', join(root, 'demo/api.ts'), '-o', join(root, 'csharp/Volley.Sample/Arena.g.cs'), '--namespace', 'Volley.Sample', '--check']);
  t.equal(r.code, 0, '--check agrees');
  const stale = write('stale.g.cs', committed.replace('Rock, Paper', 'Paper, Rock'));
  const s = await quiet(['csharp', join(root, 'demo/api.ts'), '-o', stale, '--namespace', 'Volley.Sample', '--check']);
  t.equal(s.code, 1, '--check fails on a stale file');
  t.match(s.out, /is not what .* generates/);
  t.equal(readFileSync(stale, 'utf8'), committed.replace('Rock, Paper', 'Paper, Rock'), '--check writes nothing');
});

t.test('the C# kit runner uses what the generator writes from conformance/contract.ts, byte for byte', async (t) => {
  const file = join(root, 'csharp/Volley.Tests/Kit.g.cs');
  const args = ['csharp', join(root, 'conformance/contract.ts'), '-o', file, '--namespace', 'Volley.Tests.Conformance', '--name', 'KitApi'];
  const committed = readFileSync(file, 'utf8');
  const now = emitCSharp(readContract(join(root, 'conformance/contract.ts')), { namespace: 'Volley.Tests.Conformance', name: 'KitApi', source: 'contract.ts' });
  t.equal(now, committed, 'csharp/Volley.Tests/Kit.g.cs is stale: npm run codegen:kit');
  t.equal((await quiet([...args, '--check'])).code, 0, '--check agrees');
  const stale = write('Kit.stale.g.cs', committed.replace('NotifyKitAborted', 'NotifyKitAbortedX'));
  t.equal((await quiet([...args.slice(0, 3), stale, ...args.slice(4), '--check'])).code, 1, '--check fails on a stale file');
  // Every kit method but the two with rest parameters (kit.wire, note) is in the contract,
  // the uploads' (cases 12.7–12.12) too.
  const c = readContract(join(root, 'conformance/contract.ts'));
  t.same(c.client.methods.map((m) => m.name), ['echo', 'add', 'slow', 'fail', 'boom', 'count', 'numbers', 'collect']);
  t.notOk(c.server.methods.some((m) => m.name === 'kit.wire'));
  for (const m of ['sumStream', 'takeUpload', 'uploadError']) t.ok(c.server.methods.some((x) => x.name === m && x.params.some((p) => p.upload)), `${m} takes an upload`);
  t.match(now, 'public void NotifyKitNote(string key) => _client.Notify("kit.note", new object?[] { key });');
  t.match(now, 'client.HandleStreamCall<long>("numbers", call =>');
  t.match(now, 'public async Task<SumStreamResult> SumStream(IAsyncEnumerable<long> xs, CancellationToken cancellationToken = default)');
  t.match(now, 'var a0 = KitApiWire.Upload(call, 0, "collect", static x0 => KitApiWire.Int(x0, "collect(xs)"));');
});

t.test('demo contract: both interfaces, named and inline types', async (t) => {
  const c = readContract(join(root, 'demo/api.ts'));
  t.same(c.server.methods.map((m) => m.name), ['queue', 'leaveQueue', 'leaderboard', 'watchLeaderboard', 'whoami']);
  const watch = c.server.methods.find((m) => m.name === 'watchLeaderboard')!;
  t.same([watch.stream, watch.result], [true, { kind: 'array', of: { kind: 'object', name: 'Standing' } }], 'AsyncIterable<Standing[]>: a stream of Standing[] items');
  t.same(c.client.methods.map((m) => m.name), ['chooseMove', 'matchStart', 'roundResult', 'matchEnd', 'leaderboardChanged']);
  t.same(c.enums, [{ name: 'Move', values: ['rock', 'paper', 'scissors'] }]);
  const rr = c.objects.find((o) => o.name === 'RoundResult')!;
  // Record<string, Move | null>: the alias name survives the `| null`.
  t.same(rr.fields.find((f) => f.name === 'moves')!.type, { kind: 'map', of: { kind: 'nullable', of: { kind: 'enum', name: 'Move' } } });
  t.ok(c.objects.some((o) => o.name === 'QueueResult'), 'inline result type named after its method');
  t.ok(c.objects.some((o) => o.name === 'MatchStartInfo'), 'inline param type named after method + param');
  const lb = c.server.methods.find((m) => m.name === 'leaderboard')!;
  t.same(lb.params, [{ name: 'limit', optional: true, type: { kind: 'nullable', of: { kind: 'double' } } }]);
  t.equal(c.server.methods.find((m) => m.name === 'leaveQueue')!.result, null, 'void result');
});

t.test('every supported form maps as documented', async (t) => {
  const c = readContract(join(root, 'test/fixtures/codegen-everyForm.ts'));
  const item = c.objects.find((o) => o.name === 'Item')!;
  const f = (n: string) => item.fields.find((x) => x.name === n)!;
  const expect: Record<string, [TypeRef, boolean]> = {
    id: [{ kind: 'long' }, false],
    name: [{ kind: 'string' }, false],
    flag: [{ kind: 'bool' }, false],
    tags: [{ kind: 'array', of: { kind: 'string' } }, false],
    color: [{ kind: 'enum', name: 'Color' }, false],
    alt: [{ kind: 'nullable', of: { kind: 'enum', name: 'Color' } }, true],
    shade: [{ kind: 'nullable', of: { kind: 'enum', name: 'Color' } }, false],
    mood: [{ kind: 'enum', name: 'ItemMood' }, false],
    pos: [{ kind: 'object', name: 'Vec' }, false],
    path: [{ kind: 'array', of: { kind: 'object', name: 'Vec' } }, false],
    grid: [{ kind: 'array', of: { kind: 'array', of: { kind: 'double' } } }, false],
    stats: [{ kind: 'map', of: { kind: 'double' } }, false],
    owners: [{ kind: 'map', of: { kind: 'nullable', of: { kind: 'object', name: 'Vec' } } }, false],
    note: [{ kind: 'nullable', of: { kind: 'string' } }, true],
    nick: [{ kind: 'nullable', of: { kind: 'string' } }, false],
    maybe: [{ kind: 'nullable', of: { kind: 'bool' } }, true],
    big: [{ kind: 'nullable', of: { kind: 'long' } }, true],
    blob: [{ kind: 'bytes' }, false],
    at: [{ kind: 'date' }, false],
    extra: [{ kind: 'any' }, false],
    meta: [{ kind: 'object', name: 'ItemMeta' }, false],
  };
  t.same(item.fields.map((x) => x.name), Object.keys(expect), 'fields in declaration order');
  for (const [name, [type, optional]] of Object.entries(expect)) t.same([f(name).type, f(name).optional], [type, optional], name);
  t.same(c.enums.map((e) => [e.name, e.values]), [['Color', ['red', 'green', 'dark-blue']], ['ItemMood', ['calm', 'angry']]]);
  t.same(c.objects.find((o) => o.name === 'ItemMeta')!.fields.map((x) => x.type), [{ kind: 'long' }, { kind: 'array', of: { kind: 'string' } }]);
  const sum = c.server.methods.find((m) => m.name === 'sum')!;
  t.same(sum.result, { kind: 'double' }, 'Promise<number> unwrapped');
  t.same(sum.params.map((p) => p.optional), [false, true]);
  const cs = emitCSharp(c, { namespace: 'Kit', source: 'codegen-everyForm.ts' });
  t.match(cs, 'public enum Color { Red, Green, DarkBlue }');
  t.match(cs, 'case "dark-blue": return Color.DarkBlue;');
  t.match(cs, 'public Dictionary<string, Vec?> Owners { get; set; }');
  t.match(cs, 'public long? Big { get; set; }');
  t.match(cs, 'Task<Color?> Pick(Color[] colors, CancellationToken cancellationToken = default);');
  t.match(cs, 'Task<double> Sum(double[] xs, double? scale = null, CancellationToken cancellationToken = default);');
  t.match(cs, 'Task<Item> Transform(Item item, long by, CancellationToken cancellationToken);');
  t.match(cs, 'void Ping(double n);');
  t.notMatch(cs, /typeof|GetType\(\)\.Get|Activator|Reflection|MakeGenericType|Enum\.Parse/, 'no reflection in the generated code');
});

t.test('a method without a result is also a typed notification on the proxy', async (t) => {
  const cs = emitCSharp(readContract(join(root, 'test/fixtures/codegen-everyForm.ts')), { namespace: 'Kit', source: 'codegen-everyForm.ts' });
  t.match(cs, 'public void NotifyPingMe(double n) => _client.Notify("pingMe", new object?[] { n });');
  t.match(cs, 'public void NotifyNothing() => _client.Notify("nothing", Array.Empty<object?>());');
  t.notMatch(cs, /NotifyEchoItem|NotifySum|NotifyRoundTrip/, 'none for methods with a result');
  const file = write('notify.ts', `export type Int = number;
export type Color = 'red' | 'blue';
export interface Vec { x: number; y: number }
export interface NServer {
  move(to: Vec, speed?: Int): void;
  paint(color: Color, alt?: Color): void;
  feed(): AsyncIterable<Int>;
}
export interface NClient { moved(uid: string, to: Vec): void }
`);
  const out = emitCSharp(readContract(file), { namespace: 'N', source: 'notify.ts' });
  // Converted as the call's args are, omitted optional params left off the end.
  t.match(out, 'public void NotifyMove(Vec to, long? speed = null) => _client.Notify("move", NWire.TrimOmitted(new object?[] { NWire.To(to), speed }, 1));');
  t.match(out, 'public void NotifyPaint(Color color, Color? alt = null) => _client.Notify("paint", NWire.TrimOmitted(new object?[] { NWire.To(color), (alt is Color v0 ? NWire.To(v0) : null) }, 1));');
  t.notMatch(out, 'NotifyFeed', 'none for a stream');
  // Notifications the server sends the client: Bind registers the typed method for them.
  t.match(out, 'client.On("moved", args => impl.Moved(NWire.Param(args, 0, "moved", static x0 => NWire.Str(x0, "moved(uid)")), NWire.Param(args, 1, "moved", static x0 => NWire.FromVec(x0, "moved(to)"))));');
});

t.test('proxy members that would collide in C# fail by name', async (t) => {
  const bad = (member: string) => write(`clash-${member.length}.ts`, `export interface XServer { ${member} }\nexport interface XClient { ok(): void }\n`);
  t.throws(() => emitCSharp(readContract(bad('me(): void; notifyMe(): number;')), { namespace: 'X', source: 'x.ts' }), /XServer: notifyMe\(\) and me\(\) as a notification would both be ServerProxy.NotifyMe/);
  t.throws(() => emitCSharp(readContract(bad('timeout(): number;')), { namespace: 'X', source: 'x.ts' }), /timeout\(\) and the proxy's Timeout property/);
  const r = await quiet(['csharp', bad('me(): void; notifyMe(): number;'), '-o', join(dir, 'never.cs')]);
  t.equal(r.code, 1, 'the command exits 1');
  t.match(r.out, /would both be ServerProxy.NotifyMe/);
});

t.test('a stream the client produces: a typed IAsyncEnumerable method, registered by Bind', async (t) => {
  const file = write('client-stream.ts', `export type Int = number;
export interface Vec { x: number; y: number }
export interface SServer { ok(): void }
export interface SClient {
  numbers(n: Int, from?: Int): AsyncIterable<Int>;
  path(n: Int): AsyncIterable<Vec>;
  /** A list with holes. */
  holes(): (Int | undefined)[];
}
`);
  const c = readContract(file);
  t.same(c.client.methods.map((m) => [m.name, m.stream ?? false]), [['numbers', true], ['path', true], ['holes', false]]);
  t.same(c.client.methods[2]!.result, { kind: 'array', of: { kind: 'nullable', of: { kind: 'long' } } }, '(Int | undefined)[]: the alias inside parentheses is kept');
  const cs = emitCSharp(c, { namespace: 'S', source: 'client-stream.ts' });
  // No `= null` before the required token: C# refuses an optional param before a required one.
  t.match(cs, 'IAsyncEnumerable<long> Numbers(long n, long? from, CancellationToken cancellationToken);');
  t.match(cs, 'IAsyncEnumerable<Vec> Path(long n, CancellationToken cancellationToken);');
  t.match(cs, 'Task<long?[]> Holes(CancellationToken cancellationToken);');
  t.match(cs, 'client.HandleStreamCall<long>("numbers", call =>');
  t.match(cs, 'return impl.Numbers(a0, a1, call.CancellationToken);');
  t.match(cs, 'client.HandleStreamCall<object?>("path", call =>');
  t.match(cs, 'return SWire.ItemsTo(impl.Path(a0, call.CancellationToken), static x0 => SWire.To(x0));');
  t.match(cs, 'internal static async IAsyncEnumerable<object?> ItemsTo<T>(');
  const demo = emitCSharp(readContract(join(root, 'demo/api.ts')), { namespace: 'Volley.Sample', source: 'api.ts' });
  t.notMatch(demo, 'ItemsTo', 'the helper only where a client stream needs it');
});

t.test('an upload param (AsyncIterable<T>): IAsyncEnumerable<T> on the proxy and in the handler, items converted both ways', async (t) => {
  const file = write('upload.ts', `export type Int = number;
export type Color = 'red' | 'blue';
export interface Vec { x: number; y: number }
export interface UServer {
  sumUp(label: string, xs: AsyncIterable<Int>, scale?: number): Int;
  paint(colors: AsyncIterable<Color>): void;
  scaled(by: number, vs: AsyncGenerator<Vec>): AsyncIterable<Vec>;
  anything(xs: AsyncIterableIterator<unknown>): void;
}
export interface UClient {
  total(vs: AsyncIterable<Vec>): number;
  keep(tags: AsyncIterable<string>): void;
  each(xs: AsyncIterable<unknown>): AsyncIterable<Int>;
  ping(n: number): void;
}
`);
  const c = readContract(file);
  const sumUp = c.server.methods[0]!;
  t.same(sumUp.params, [
    { name: 'label', optional: false, type: { kind: 'string' } },
    { name: 'xs', optional: false, upload: true, type: { kind: 'long' } },
    { name: 'scale', optional: true, type: { kind: 'nullable', of: { kind: 'double' } } },
  ], 'the upload param carries its item type');
  t.same(c.server.methods[2]!.params[1], { name: 'vs', optional: false, upload: true, type: { kind: 'object', name: 'Vec' } }, 'AsyncGenerator<T> is an upload too');
  const cs = emitCSharp(c, { namespace: 'U', source: 'upload.ts' });
  // Proxy: the items go as they are (a wire value) or converted on their way out.
  t.match(cs, 'Task<long> SumUp(string label, IAsyncEnumerable<long> xs, double? scale = null, CancellationToken cancellationToken = default);');
  t.match(cs, 'var _w = await Call("sumUp", UWire.TrimOmitted(new object?[] { label, VolleyUpload.Of(xs), scale }, 2), cancellationToken).ConfigureAwait(false);');
  t.match(cs, 'public Task Paint(IAsyncEnumerable<Color> colors, CancellationToken cancellationToken = default) => Call("paint", new object?[] { VolleyUpload.Of(UWire.ItemsTo(colors, static x0 => UWire.To(x0))) }, cancellationToken);');
  t.notMatch(cs, 'NotifyPaint', 'an upload goes with a call: no notification');
  t.notMatch(cs, 'NotifyAnything');
  t.match(cs, 'public async IAsyncEnumerable<Vec> Scaled(double by, IAsyncEnumerable<Vec> vs, [EnumeratorCancellation] CancellationToken cancellationToken = default)');
  t.match(cs, '_client.StreamAsync<object?>("scaled", new object?[] { by, VolleyUpload.Of(UWire.ItemsTo(vs, static x0 => UWire.To(x0))) }, cancellationToken)');
  t.match(cs, 'public Task Anything(IAsyncEnumerable<object?> xs, CancellationToken cancellationToken = default) => Call("anything", new object?[] { VolleyUpload.Of(xs) }, cancellationToken);');
  // Handlers: each item converted on its way in, INVALID_PARAMS naming the method when it doesn't.
  t.match(cs, 'Task<double> Total(IAsyncEnumerable<Vec> vs, CancellationToken cancellationToken);');
  t.match(cs, 'Task Keep(IAsyncEnumerable<string> tags, CancellationToken cancellationToken);', 'a void handler reading an upload is a Task: it is called, never notified');
  t.match(cs, 'IAsyncEnumerable<long> Each(IAsyncEnumerable<object?> xs, CancellationToken cancellationToken);');
  t.match(cs, 'void Ping(double n);');
  t.match(cs, 'var a0 = UWire.Upload(call, 0, "total", static x0 => UWire.FromVec(x0, "total(vs)"));');
  t.match(cs, 'var a0 = UWire.Upload(call, 0, "keep", static x0 => UWire.Str(x0, "keep(tags)"));');
  t.match(cs, 'await impl.Keep(a0, call.CancellationToken).ConfigureAwait(false);');
  t.notMatch(cs, 'client.On("keep"', 'a handler reading an upload is not registered for notifications');
  t.match(cs, 'client.On("ping"');
  t.match(cs, 'var a0 = call.Upload<object?>(0);', 'unknown items: the reader as it is');
  t.match(cs, 'client.HandleStreamCall<long>("each", call =>');
  t.match(cs, 'internal static IAsyncEnumerable<T> Upload<T>(VolleyCall call, int i, string what, Func<object?, T> item)');
  t.match(cs, 'throw new VolleyRpcException(ErrorCodes.InvalidParams, what + ": an upload item does not convert: " + e.Message, null, e);');
  t.notMatch(cs, /typeof|GetType\(\)\.Get|Activator|Reflection|MakeGenericType/, 'no reflection');
  const demo = emitCSharp(readContract(join(root, 'demo/api.ts')), { namespace: 'Volley.Sample', source: 'api.ts' });
  t.notMatch(demo, /Upload\(|VolleyUpload/, 'no upload helper where no method reads one');
});

const unsupported: [string, string, RegExp][] = [
  ['optional upload', 'f(xs?: AsyncIterable<number>): void;', /XServer\.f\(xs\): an upload can't be optional or null/],
  ['nullable upload', 'f(xs: AsyncIterable<number> | null): void;', /XServer\.f\(xs\): an upload can't be optional or null/],
  ['upload in a field', 'f(a: { xs: AsyncIterable<number> }): void;', /XServer\.f\(a\) → FA\.xs: an async iterable is only allowed as a method's param \(an upload\) or its result \(a stream\)/],
  ['upload in an array', 'f(xs: AsyncIterable<number>[]): void;', /XServer\.f\(xs\)\[\]: an async iterable is only allowed/],
  ['upload of uploads', 'f(xs: AsyncIterable<AsyncIterable<number>>): void;', /XServer\.f\(xs\): upload item: an async iterable is only allowed/],
  ['stream of streams', 'f(): AsyncIterable<AsyncIterable<number>>;', /XServer\.f\(\): stream item: an async iterable is only allowed/],
  ['upload of nothing', 'f(xs: AsyncIterable<void>): void;', /XServer\.f\(xs\): upload item: a type that is only null\/undefined carries nothing/],
  ['generic method', 'f<T>(x: T): T;', /XServer\.f: generic methods are not supported/],
  ['function param', 'f(cb: (n: number) => void): void;', /XServer\.f\(cb\): function types do not cross the wire/],
  ['function field', 'f(a: { id: string; cb(): void }): void;', /XServer\.f\(a\) → FA\.cb: methods do not cross the wire/],
  ['generic type', 'f(b: Box<number>): void;', /XServer\.f\(b\): generic type Box<number> is not supported/],
  ['mixed union', 'f(x: string | number): void;', /XServer\.f\(x\): unions other than string literals .* string \| number/],
  ['tuple', 'f(x: [number, string]): void;', /XServer\.f\(x\): tuples are not supported/],
  ['bigint', 'f(): bigint;', /XServer\.f\(\): result: bigint does not cross the wire/],
  ['Map', 'f(m: Map<string, number>): void;', /XServer\.f\(m\): Map does not cross the wire/],
  ['number literals', 'f(x: 1 | 2): void;', /XServer\.f\(x\): unions other than string literals/],
  ['rest params', 'f(...xs: number[]): void;', /XServer\.f\(\.\.\.xs\): rest parameters/],
  ['not a method', 'count: number;', /XServer\.count: expected a method/],
  ['overloads', 'f(x: string): void; f(x: boolean): void;', /XServer\.f: expected a method .*overloads/],
  ['nested promise', 'f(x: Promise<number>): void;', /XServer\.f\(x\): a promise is only allowed as a method's result/],
];

t.test('unsupported forms fail with an error naming the member', async (t) => {
  for (const [what, member, message] of unsupported) {
    const file = write(`bad-${what.replace(/\W/g, '_')}.ts`, `interface Box<T> { v: T }\nexport interface XServer { ${member} }\nexport interface XClient { ok(): void }\n`);
    t.throws(() => readContract(file), message, what);
    const r = await quiet(['csharp', file, '-o', join(dir, 'never.cs')]);
    t.equal(r.code, 1, `${what}: the command exits 1`);
    t.match(r.out, message, `${what}: the command says why`);
  }
  const none = write('none.ts', 'export interface Api { f(): void }\n');
  t.throws(() => readContract(none), /0 exported interfaces named \*Server .*--server/, 'no server interface');
  t.doesNotThrow(() => readContract(none, { server: 'Api', client: 'Api' }), '--server/--client name them');
  t.throws(() => readContract(join(dir, 'missing.ts')), ContractError);
});
