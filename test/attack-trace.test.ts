// Issue 20 #5: trace poisoning. A client's `$trace` was adopted as the parent of the
// server's span, so a client chose the trace id of everything its call caused: the
// server's span, and the `$trace` the server sent with its calls to other players (their
// spans joined the client's trace too). One player could graft its calls onto any trace,
// or make another player's spans land in a trace of its choosing.
//
// Fixed (SPEC §10): by default the server starts a trace of its own for a client's call and
// records the client's span as a link; `observe.trustClientTrace: true` adopts it as the
// parent (for clients the operator trusts). A `$trace` applies to the request right after
// it and to no other.

import t, { type Test } from 'tap';
import * as otel from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { concatFrames, encode, NOTIFICATION, REQUEST, RESPONSE, TRACE } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import { RawSocket } from './fuzz/rawSocket.ts';
import { startServer, until } from './helpers.ts';

const exporter = new InMemorySpanExporter();
otel.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** The trace and span id the attacker picks. */
const CHOSEN_TRACE = 'ab'.repeat(16);
const CHOSEN_SPAN = 'cd'.repeat(8);
const CHOSEN = `00-${CHOSEN_TRACE}-${CHOSEN_SPAN}-01`;

const handlers = {
  /** Calls another player, as a matchmaker or a game round does. */
  relay: (ctx: ServerContext, uid: string) => ctx.server.call(uid, 'ask', []),
  one: () => 1,
};

const serverSpans = (method: string) => exporter.getFinishedSpans().filter((s) => s.kind === otel.SpanKind.SERVER && s.name === method);

async function login(t: Test, port: number, uid: string): Promise<RawSocket> {
  const s = await RawSocket.open(port, `/?token=u:${uid}`);
  t.teardown(() => s.destroy());
  await s.waitFor(() => s.messages.find((m) => Array.isArray(m) && m[1] === '$session'));
  return s;
}

/**
 * Mallory calls relay(bob) with her chosen `$trace`; bob (a raw socket) answers the
 * server's call. Returns the server's span for relay and the `$trace` bob got before `ask`.
 */
async function poison(t: Test, observe: Record<string, unknown>) {
  exporter.reset();
  const h = await startServer({ handlers, observe: { tracing: otel, ...observe } });
  t.teardown(() => h.close());
  const mallory = await login(t, h.port, 'mallory');
  const bob = await login(t, h.port, 'bob');
  mallory.sendBinary(concatFrames([encode([NOTIFICATION, TRACE, [CHOSEN]]), encode([REQUEST, 1, 'relay', ['bob']])]));
  const at = await bob.waitFor(() => {
    const i = bob.messages.findIndex((m) => Array.isArray(m) && m[0] === REQUEST && m[2] === 'ask');
    return i >= 0 ? i : undefined;
  });
  t.ok(at !== undefined, 'the server called bob');
  const ask = bob.messages[at!] as unknown[];
  const before = bob.messages[at! - 1] as unknown[];
  t.same(before.slice(0, 2), [NOTIFICATION, TRACE], 'with a $trace right before the call');
  bob.sendBinary(encode([RESPONSE, ask[1], null, 42]));
  const reply = await mallory.responseOrClose(1, 3000);
  t.same(reply?.response, [RESPONSE, 1, null, 42], 'mallory gets her answer');
  await until(() => serverSpans('relay').length === 1, 2000, 'the relay span');
  return { span: serverSpans('relay')[0]!, bobTraceparent: (before[2] as string[])[0]! };
}

const traceIdOf = (traceparent: string) => traceparent.split('-')[1];

t.test('by default a client\'s trace context is a link: the server starts its own trace and passes on only that', async (t) => {
  const { span, bobTraceparent } = await poison(t, {});
  t.not(span.spanContext().traceId, CHOSEN_TRACE, 'the server\'s span is not in the trace the client chose');
  t.equal(span.parentSpanContext, undefined, 'and has no remote parent');
  t.same(
    span.links.map((l) => [l.context.traceId, l.context.spanId]),
    [[CHOSEN_TRACE, CHOSEN_SPAN]],
    'the client\'s span is recorded as a link',
  );
  t.not(traceIdOf(bobTraceparent), CHOSEN_TRACE, 'the $trace sent to another player does not carry the client\'s trace id');
  t.equal(traceIdOf(bobTraceparent), span.spanContext().traceId, 'it carries the server\'s own trace');
});

t.test('with observe.trustClientTrace the client\'s span is the parent, and its trace goes on to other players', async (t) => {
  const { span, bobTraceparent } = await poison(t, { trustClientTrace: true });
  t.equal(span.spanContext().traceId, CHOSEN_TRACE, 'the server\'s span joins the client\'s trace');
  t.equal(span.parentSpanContext?.spanId, CHOSEN_SPAN, 'as a child of the client\'s span');
  t.same(span.links, [], 'no link');
  t.equal(traceIdOf(bobTraceparent), CHOSEN_TRACE, 'bob\'s $trace carries the same trace');
});

t.test('a $trace applies to the request right after it and to no other (trusted, so adoption shows)', async (t) => {
  exporter.reset();
  const h = await startServer({ handlers, observe: { tracing: otel, trustClientTrace: true } });
  t.teardown(() => h.close());
  const s = await login(t, h.port, 'carol');
  const trace = encode([NOTIFICATION, TRACE, [CHOSEN]]);
  // Its request refused (no such method): the next request in the same message must not take it.
  s.sendBinary(concatFrames([trace, encode([REQUEST, 1, 'nope', []]), encode([REQUEST, 2, 'one', []])]));
  // A notification between it and the request: dropped.
  s.sendBinary(concatFrames([trace, encode([NOTIFICATION, 'one', []]), encode([REQUEST, 3, 'one', []])]));
  // Two in a row: the second annotates the request.
  const other = `00-${'ef'.repeat(16)}-${'12'.repeat(8)}-01`;
  s.sendBinary(concatFrames([trace, encode([NOTIFICATION, TRACE, [other]]), encode([REQUEST, 4, 'one', []])]));
  await until(() => serverSpans('one').length === 3, 2000, '3 spans');
  const spans: ReadableSpan[] = serverSpans('one');
  t.not(spans[0]!.spanContext().traceId, CHOSEN_TRACE, 'after a refused request: not adopted');
  t.not(spans[1]!.spanContext().traceId, CHOSEN_TRACE, 'after a notification: not adopted');
  t.equal(spans[2]!.spanContext().traceId, 'ef'.repeat(16), 'two in a row: the one right before the request');
});
