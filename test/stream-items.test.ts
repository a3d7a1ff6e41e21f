// Several stream items in one request (`$items`, the feature `items`, SPEC §11, §12): a
// producer sends what it had ready in one event-loop turn as one request, answered once the
// reader took them all, only to a peer that named the feature. Seen on the wire by a raw
// client; and the attacker's view, both ways: an `$items` out of shape, past the window or
// for no stream costs its sender a refusal, and a `$features` of garbage is ignored.

import t from 'tap';
import WebSocket from 'ws';
import { Packr, Unpackr } from 'msgpackr';
import type { VolleyClient } from '../client/index.ts';
import { ErrorCode, RpcError, type ServerContext } from '../server/index.ts';
import { startServer, until } from './helpers.ts';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

interface ServerApi {
  feed(n: number, size: number): AsyncIterable<unknown>;
  failAfter(n: number): AsyncIterable<number>;
  sum(xs: AsyncIterable<number>): number;
  echo(x: unknown): unknown;
}
const handlers = {
  async *feed(_ctx: ServerContext, n: number, size: number) {
    for (let i = 0; i < n; i++) yield size > 0 ? new Uint8Array(size).fill(i % 256) : i;
  },
  async *failAfter(_ctx: ServerContext, n: number) {
    for (let i = 0; i < n; i++) yield i;
    throw new RpcError('BOOM', `failed after ${n}`);
  },
  async sum(_ctx: ServerContext, xs: AsyncIterable<number>) {
    let sum = 0;
    for await (const x of xs) sum += x;
    return sum;
  },
  echo: (_ctx: ServerContext, x: unknown) => x,
};

/** A client speaking the protocol by hand: answers every stream item at once, records what came. */
async function rawReader(url: string, uid: string, features: string[] | undefined) {
  const ws = new WebSocket(`${url}?token=u:${uid}`);
  const got: unknown[][] = [];
  let session: { features?: unknown } | undefined;
  ws.on('message', (data: Buffer) => {
    unpackr.unpackMultiple(data, (v: unknown) => {
      const m = v as unknown[];
      got.push(m);
      if (m[0] === 2 && m[1] === '$session') session = (m[2] as [{ features?: unknown }])[0];
      // A stream item: taken at once (the credit).
      if (m[0] === 0 && (m[2] === '$item' || m[2] === '$items')) ws.send(packr.pack([1, m[1], null, null]));
    });
  });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  await until(() => session !== undefined, 3000, '$session');
  ws.send(packr.pack([2, '$ack', [0]]));
  if (features) ws.send(packr.pack([2, '$features', [features]]));
  return {
    session: session!,
    got,
    send: (m: unknown[]) => ws.send(packr.pack(m)),
    close: () => ws.close(),
    response: (id: number) => got.find((m) => m[0] === 1 && m[1] === id),
  };
}

t.test('the server sends items ready together as $items to a client that named `items`, one $item each to one that did not', async (t) => {
  const h = await startServer<ServerApi, Record<string, never>>({ handlers });
  t.teardown(() => h.close());
  for (const features of [['items'], undefined, ['x-other']]) {
    const r = await rawReader(h.url, `raw-${features?.[0] ?? 'none'}`, features);
    t.teardown(r.close);
    t.same(r.session.features, ['items'], '$session lists the feature');
    r.send([0, 1, 'feed', [100, 0]]);
    await until(() => r.response(1) !== undefined, 5000, 'the stream to end');
    t.same(r.response(1), [1, 1, null, null], 'the stream ends');
    const requests = r.got.filter((m) => m[0] === 0);
    t.ok(requests.every((m) => (m[3] as unknown[])[0] === 1), 'every item for the stream call');
    const values = requests.flatMap((m) => {
      const v = (m[3] as unknown[])[1];
      return m[2] === '$items' ? (v as unknown[]) : [v];
    });
    t.same(values, Array.from({ length: 100 }, (_, i) => i), `${features ?? 'no $features'}: every item once, in order`);
    const batches = requests.filter((m) => m[2] === '$items');
    if (features?.includes('items')) {
      t.ok(batches.length > 0, `${requests.length} requests for 100 items`);
      t.ok(requests.length < 20, `mostly $items: ${requests.length} requests`);
      const sizes = batches.map((m) => ((m[3] as unknown[])[1] as unknown[]).length);
      t.ok(sizes.every((n) => n >= 2 && n <= 16), `each $items 2..16 values: ${sizes}`);
    } else {
      t.equal(batches.length, 0, 'no $items');
      t.equal(requests.length, 100, 'one $item per item');
    }
  }
});

t.test('items that together break the receiver limits go one $item each; items before an error come before it', async (t) => {
  const h = await startServer<ServerApi, Record<string, never>>({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('reader');
  // 20 items of 200 KiB: 16 together are over the 1 MiB message limit, each alone is not.
  let n = 0;
  let inOrder = true;
  for await (const chunk of c.stream('feed', [20, 200 * 1024]) as AsyncIterable<Uint8Array>) inOrder &&= chunk.byteLength === 200 * 1024 && chunk[0] === n++ % 256;
  t.equal(n, 20, 'every large item arrived');
  t.ok(inOrder, 'whole and in order');
  const seen: number[] = [];
  const err = await (async () => {
    for await (const x of c.stream('failAfter', [5]) as AsyncIterable<number>) seen.push(x);
  })().then(() => undefined, (e: RpcError) => e);
  t.same(seen, [0, 1, 2, 3, 4], 'the items sent before the error');
  t.equal(err?.code, 'BOOM', 'then the error');
  t.equal(await c.server.sum((async function* () { for (let i = 1; i <= 100; i++) yield i; })()), 5050, 'client → server too');
});

const quiet = (c: VolleyClient<any, any>) => ({ streams: c.peer.streams?.size ?? 0, incoming: c.peer.pendingIncoming, outgoing: c.peer.pendingOutgoing });

t.test('attacker: an $items out of shape, past the window or for no stream is refused alone; a $features of garbage is ignored', async (t) => {
  const h = await startServer<ServerApi, Record<string, never>>({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('attacker');
  const bad: [string, unknown[], string][] = [
    ['no values', [1], ErrorCode.INVALID_PARAMS],
    ['values not a list', [1, 7], ErrorCode.INVALID_PARAMS],
    ['an empty list', [1, []], ErrorCode.INVALID_PARAMS],
    ['17 values, past the window', [1, Array(17).fill(0)], ErrorCode.INVALID_PARAMS],
    ['10,000 values', [1, Array(10_000).fill(0)], ErrorCode.INVALID_PARAMS],
    ['a stream nobody reads', [123, [1, 2]], ErrorCode.CANCELLED],
    ['a stream id that is not one', ['x', [1, 2]], ErrorCode.INVALID_PARAMS],
  ];
  for (const [what, params, code] of bad) {
    const e = await c.call('$items' as never, params as never).then(() => undefined, (err: RpcError) => err);
    t.equal(e?.code, code, `${what}: ${e?.code} ${e?.message}`);
  }
  for (const f of [7, 'items', [[['items']]], Array(5000).fill('items'), null]) (c as unknown as { notify(m: string, a: unknown[]): void }).notify('$features', [f]);
  t.equal(await c.server.echo('still here'), 'still here', 'the session stays');
  t.same(h.server.stats(), { connections: 1, pendingIncoming: 0, pendingOutgoing: 0 }, 'the server holds no call for them');
  t.same(quiet(c), { streams: 0, incoming: 0, outgoing: 0 });
});

t.test('a hostile server: $items to a client, out of shape or for a stream it does not read, is refused', async (t) => {
  const h = await startServer<ServerApi, Record<string, never>>({ handlers });
  t.teardown(() => h.close());
  const c = await h.client('target');
  const bad: [unknown[], string][] = [
    [[1, 'x'], ErrorCode.INVALID_PARAMS],
    [[1, Array(17).fill(1)], ErrorCode.INVALID_PARAMS],
    [[9, [1, 2, 3]], ErrorCode.CANCELLED],
  ];
  for (const [params, code] of bad) {
    const e = await h.server.call('target', '$items' as never, params as never).then(() => undefined, (err: RpcError) => err);
    t.equal(e?.code, code, `$items ${JSON.stringify(params).slice(0, 40)}: ${e?.code} ${e?.message}`);
  }
  const outcomes = await Promise.all(Array.from({ length: 1000 }, (_, i) => h.server.call('target', '$items' as never, [i, [i]] as never).then(() => 'answered', (e: RpcError) => e.code)));
  t.equal(outcomes.filter((o) => o === ErrorCode.CANCELLED).length, 1000, '1,000 refused');
  t.same(quiet(c), { streams: 0, incoming: 0, outgoing: 0 }, 'the client kept nothing');
  t.equal(c.state, 'open');
});
