// Traces with the OpenTelemetry SDK's in-memory exporter: a client's call whose server
// handler calls another player is one trace (client → server → other client), on one node
// and across two cluster nodes on a real Redis, when the server trusts its clients'
// trace context (`observe.trustClientTrace`; by default it only links it:
// test/attack-trace.test.ts); codes land on the spans; a made-up `$trace` never becomes a parent.

import t, { type Test } from 'tap';
import * as otel from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { RpcError, decodeFrame, encode, NOTIFICATION, REQUEST, TRACE } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import { sleep, startServer, until, WebSocket } from './helpers.ts';
import { startNode } from './clusterNodes.ts';
import { clientTracing } from '../client/tracing.ts';
import { redisMissing, startRedis } from './redisServer.ts';

const exporter = new InMemorySpanExporter();
/** Every span started, ended or not: a span that is never ended is never exported. */
const started: string[] = [];
const startWatcher = {
  onStart: (span: { name: string }) => void started.push(span.name),
  onEnd: () => {},
  shutdown: async () => {},
  forceFlush: async () => {},
};
otel.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), startWatcher] }));
otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const handlers = {
  relay: (ctx: ServerContext, uid: string) => ctx.server.call(uid, 'ask', []),
  refuse: () => {
    throw new RpcError('NOT_YOUR_TURN', 'wait');
  },
};
const bobHandlers = { ask: () => 42 };

const kindName = (s: ReadableSpan) => (s.kind === otel.SpanKind.CLIENT ? 'client' : s.kind === otel.SpanKind.SERVER ? 'server' : String(s.kind));
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** The spans of one trace ordered parent → child, as "kind method" strings; fails on a broken chain. */
function chain(t: Test, spans: ReadableSpan[]): string[] {
  const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
  t.equal(traceIds.size, 1, 'one trace');
  const out: string[] = [];
  let cur = spans.find((s) => parentOf(s) === undefined);
  t.ok(cur, 'a root span');
  while (cur) {
    out.push(`${kindName(cur)} ${cur.name}`);
    const id = cur.spanContext().spanId;
    cur = spans.find((s) => parentOf(s) === id);
  }
  return out;
}

t.test('client → server → other client is one trace (trustClientTrace)', async (t) => {
  exporter.reset();
  const h = await startServer({ handlers, observe: { tracing: otel, trustClientTrace: true } });
  t.teardown(() => h.close());
  const alice = await h.client('alice', { tracing: clientTracing(otel) });
  await h.client('bob', { tracing: clientTracing(otel), handlers: bobHandlers });
  t.equal(await alice.call('relay', ['bob'] as never), 42);
  await until(() => exporter.getFinishedSpans().length >= 4, 2000, '4 spans');
  const spans = exporter.getFinishedSpans();
  t.same(chain(t, spans), ['client relay', 'server relay', 'client ask', 'server ask']);
  for (const s of spans) {
    t.equal(s.attributes['rpc.system'], 'volley');
    t.equal(s.attributes['rpc.method'], s.name);
    t.equal(s.attributes['rpc.response.status_code'], 'OK');
    t.equal(s.status.code, otel.SpanStatusCode.UNSET);
  }

  exporter.reset();
  await alice.call('refuse', [] as never).catch(() => {});
  await until(() => exporter.getFinishedSpans().length >= 2, 2000, '2 spans');
  for (const s of exporter.getFinishedSpans()) {
    t.equal(s.attributes['rpc.response.status_code'], 'NOT_YOUR_TURN', `${kindName(s)} span has the code`);
    t.equal(s.status.code, otel.SpanStatusCode.ERROR);
  }

  // A notification runs its handler without a span (no answer would ever end one).
  exporter.reset();
  started.length = 0;
  alice.notify('refuse' as never);
  await alice.call('relay', ['bob'] as never);
  await until(() => exporter.getFinishedSpans().length >= 4, 2000, '4 spans');
  await sleep(50);
  t.same(started, ['relay', 'relay', 'ask', 'ask'], 'no span started for the notification');
});

t.test('a $trace from a plain peer: honoured when well-formed, ignored when not, never leaks to the next message', async (t) => {
  exporter.reset();
  const h = await startServer({ handlers: { relay: () => 1 }, observe: { tracing: otel, trustClientTrace: true } });
  t.teardown(() => h.close());
  const ws = new WebSocket(`${h.url}?token=u:raw`);
  t.teardown(() => ws.terminate());
  await new Promise((r) => ws.once('message', r));
  const traceId = 'ab'.repeat(16);
  const good = `00-${traceId}-${'cd'.repeat(8)}-01`;
  const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);
  // 1: well-formed, same WebSocket message as its request → the server span is its child.
  ws.send(cat(encode([NOTIFICATION, TRACE, [good]]), encode([REQUEST, 1, 'relay', []])));
  // 2: a $trace alone, then the request in the next message → no parent (new trace).
  ws.send(encode([NOTIFICATION, TRACE, [good]]));
  ws.send(encode([REQUEST, 2, 'relay', []]));
  // 3: malformed values (wrong length, zero ids, upper case, not a string) → no parent.
  for (const bad of [`00-${traceId}-${'cd'.repeat(8)}-1`, `00-${'0'.repeat(32)}-${'cd'.repeat(8)}-01`, good.toUpperCase(), 42, { a: 1 }])
    ws.send(cat(encode([NOTIFICATION, TRACE, [bad]]), encode([REQUEST, 3, 'relay', []])));
  await until(() => exporter.getFinishedSpans().length >= 7, 2000, '7 spans');
  const spans = exporter.getFinishedSpans();
  t.equal(spans[0]!.spanContext().traceId, traceId, 'the first call joined the sender\'s trace');
  t.equal(parentOf(spans[0]!), 'cd'.repeat(8));
  for (const s of spans.slice(1)) {
    t.not(s.spanContext().traceId, traceId, 'later calls start their own trace');
    t.equal(parentOf(s), undefined);
  }
});

t.test('a $trace right before its request is free of the rate limit (SPEC §8, §10)', async (t) => {
  const BURST = 20;
  const h = await startServer({ handlers: { relay: () => 1 }, rateLimit: { ratePerSec: 1, burst: BURST }, observe: { tracing: otel } });
  t.teardown(() => h.close());
  const ws = new WebSocket(`${h.url}?token=u:tracer`);
  t.teardown(() => ws.terminate());
  await new Promise((r) => ws.once('message', r));
  const replies: unknown[][] = [];
  ws.on('message', (d) => {
    for (const m of decodeFrame(d as Buffer, 256)) if ((m as unknown[])[0] === 1) replies.push(m as unknown[]);
  });
  const tp = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
  // Most of the bucket in traced calls, then one ordinary call: it must run (a charged
  // `$trace` would have spent the bucket twice over; a lone one pays: attack-free-messages).
  ws.send(Buffer.concat(Array.from({ length: BURST - 1 }, (_, i) => [encode([NOTIFICATION, TRACE, [tp]]), encode([REQUEST, 100 + i, 'relay', []])]).flat()));
  ws.send(encode([REQUEST, 7, 'relay', []]));
  await until(() => replies.some((r) => r[1] === 7), 2000, 'the reply');
  t.same(replies.find((r) => r[1] === 7), [1, 7, null, 1], 'not charged: the call after them is served');
});

t.test('across two cluster nodes over Redis: still one trace', { skip: redisMissing ?? false }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const settings = { redis: redis.url, prefix: `tr${process.pid}:` };
  const [A, B] = await Promise.all([
    startNode(settings, { handlers, observe: { tracing: otel, trustClientTrace: true } }),
    startNode(settings, { handlers, observe: { tracing: otel, trustClientTrace: true } }),
  ]);
  t.teardown(() => Promise.all([A.close(), B.close()]));
  const alice = await A.client('alice', { tracing: clientTracing(otel) });
  await B.client('bob', { tracing: clientTracing(otel), handlers: bobHandlers });
  exporter.reset();
  t.equal(await alice.call('relay', ['bob'] as never), 42);
  await until(() => exporter.getFinishedSpans().length >= 5, 3000, '5 spans');
  // Node A's client span for the forwarded call, node B's client span to bob, bob's handler.
  t.same(chain(t, exporter.getFinishedSpans()), ['client relay', 'server relay', 'client ask', 'client ask', 'server ask']);
});
