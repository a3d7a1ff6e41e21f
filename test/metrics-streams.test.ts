// Metrics and traces cover stream items (issue 23): volley_stream_items_total{rpc_method,
// direction} read back from a real /metrics scrape (prom-client Registry), within
// observe.maxSeries, and the stream's span notes its item count. All four kinds: a stream a
// handler returns, an upload a handler reads, a stream the server reads from a player, an
// upload the server sends to one.

import t from 'tap';
import * as otel from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import type { ServerContext } from '../server/index.ts';
import { startServer, until } from './helpers.ts';

const exporter = new InMemorySpanExporter();
otel.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

const TOKEN = 'metrics-streams-test-token';

async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n'))
    if (line && !line.startsWith('#')) out.set(line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1)));
  return out;
}
const items = (m: Map<string, number>, method: string, direction: string) =>
  m.get(`volley_stream_items_total{rpc_system="volley",rpc_method="${method}",direction="${direction}"}`);

async function* upTo(n: number) {
  for (let i = 0; i < n; i++) yield i;
}

const handlers = {
  feed: async function* (_ctx: ServerContext, n: number) {
    yield* upTo(n);
  },
  sumUp: async (_ctx: ServerContext, xs: AsyncIterable<number>) => {
    let sum = 0;
    for await (const x of xs) sum += x;
    return sum;
  },
  readPlayer: async (ctx: ServerContext, n: number) => {
    let got = 0;
    for await (const _ of ctx.server.stream(ctx.uid, 'numbers', [n])) got++;
    return got;
  },
  pushToPlayer: (ctx: ServerContext, n: number) => ctx.server.call(ctx.uid, 'collect', [upTo(n)]),
};
const clientHandlers = {
  numbers: async function* (_ctx: unknown, n: number) {
    yield* upTo(n);
  },
  collect: async (_ctx: unknown, xs: AsyncIterable<number>) => {
    let n = 0;
    for await (const _ of xs) n++;
    return n;
  },
};

t.test('volley_stream_items_total counts items both ways, by method and direction, on a real scrape', async (t) => {
  exporter.reset();
  const h = await startServer({ handlers, observe: { registry: new Registry(), routes: true, routesToken: TOKEN, routesCacheMs: 0, tracing: otel } });
  t.teardown(() => h.close());
  const c = await h.client('watcher', { handlers: clientHandlers });

  let read = 0;
  for await (const _ of c.stream('feed', [50])) read++;
  t.equal(read, 50);
  t.equal(await c.call('sumUp', [upTo(30)]), 435);
  t.equal(await c.call('readPlayer', [20]), 20);
  t.equal(await c.call('pushToPlayer', [10]), 10);
  // A stream its reader leaves early: what was sent before counts.
  for await (const _ of c.stream('feed', [1_000_000])) if (++read === 55) break;

  const m = await scrape(h.port);
  const feed = items(m, 'feed', 'sent')!;
  t.ok(feed >= 55 && feed <= 55 + 2 * 16, `feed: ${feed} items sent (50, then the 5 read and at most the window ahead)`);
  t.equal(items(m, 'sumUp', 'received'), 30, 'an upload the handler read: received');
  t.equal(items(m, 'numbers', 'received'), 20, "a player's stream the server read: received");
  t.equal(items(m, 'collect', 'sent'), 10, 'an upload the server sent a player: sent');
  t.equal(items(m, 'feed', 'received'), undefined, 'no series for what did not happen');
  t.equal(m.get('rpc_server_call_duration_seconds_count{rpc_system="volley",rpc_method="sumUp",rpc_response_status_code="OK"}'), 1, 'the upload is one call served');
  t.equal([...m.keys()].filter((k) => k.includes('rpc_method="other"') && k.startsWith('rpc_server')).length, 0, "the stream's own messages are no calls of their own");
  // A stream the server reads is a call it made: its duration and outcome (before: not observed at all).
  t.equal(m.get('rpc_client_call_duration_seconds_count{rpc_system="volley",rpc_method="numbers",rpc_response_status_code="OK"}'), 1, "the player's stream the server read: one call made, OK");

  // Spans: the stream's span notes its items.
  await until(() => exporter.getFinishedSpans().filter((s) => s.name === 'feed').length === 2, 2000, 'both feed spans');
  const feeds = exporter.getFinishedSpans().filter((s) => s.name === 'feed');
  t.same(feeds.map((s) => s.attributes['volley.stream.items_sent'] !== undefined), [true, true]);
  t.equal(feeds[0]!.attributes['volley.stream.items_sent'], 50, 'the finished stream: 50');
  t.ok((feeds[1]!.attributes['volley.stream.items_sent'] as number) >= 55 - 50, 'the cancelled one: what it sent before the cancel');
  const sumUp = exporter.getFinishedSpans().find((s) => s.name === 'sumUp');
  t.equal(sumUp?.attributes['volley.stream.items_received'], 30, "the upload's call span: 30 received");
});

t.test("a stream the server reads and leaves early, or that fails, is a call made with its outcome", async (t) => {
  const h = await startServer({
    handlers: {
      readSome: async (ctx: ServerContext, n: number) => {
        let got = 0;
        for await (const _ of ctx.server.stream(ctx.uid, 'numbers', [1_000_000])) if (++got === n) break;
        return got;
      },
      readFailing: async (ctx: ServerContext) => {
        try {
          for await (const _ of ctx.server.stream(ctx.uid, 'broken', []));
        } catch (err) {
          return (err as { code: string }).code;
        }
        return 'no error';
      },
    },
    observe: { registry: new Registry(), routes: true, routesToken: TOKEN, routesCacheMs: 0 },
  });
  t.teardown(() => h.close());
  const c = await h.client('leaver', {
    handlers: {
      ...clientHandlers,
      broken: async function* () {
        yield 1;
        throw Object.assign(new Error('no more'), { code: 'GAME_OVER' });
      },
    },
  });
  t.equal(await c.call('readSome', [5]), 5);
  t.equal(await c.call('readFailing', []), 'INTERNAL');
  const m = await scrape(h.port);
  t.equal(m.get('rpc_client_call_duration_seconds_count{rpc_system="volley",rpc_method="numbers",rpc_response_status_code="CANCELLED"}'), 1, 'left early: CANCELLED');
  t.equal(m.get('rpc_client_call_duration_seconds_count{rpc_system="volley",rpc_method="broken",rpc_response_status_code="INTERNAL"}'), 1, 'failed: its code');
});

t.test('item counters stay within observe.maxSeries: past it they are counted under other', async (t) => {
  // The least maxSeries a server takes: its fixed series and the always-present overflow ones.
  const registry = new Registry();
  const h = await startServer({ handlers, observe: { registry, routes: true, routesToken: TOKEN, routesCacheMs: 0, maxSeries: 102 } });
  t.teardown(() => h.close());
  const c = await h.client('tight', { handlers: clientHandlers });
  for await (const _ of c.stream('feed', [40]));
  t.equal(await c.call('sumUp', [upTo(25)]), 300);
  const m = await scrape(h.port);
  t.ok(m.size <= 102, `${m.size} series (cap 102)`);
  t.equal(items(m, 'feed', 'sent'), undefined, 'no series of its own');
  t.equal(items(m, 'other', 'sent'), 40, 'counted under other');
  t.equal(items(m, 'other', 'received'), 25);
  await t.rejects(startServer({ handlers, observe: { registry: new Registry(), maxSeries: 101 } }), /below the 102 series/, 'one less is refused at start');
});
