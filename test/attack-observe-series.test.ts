// Issue 20 #6: a client could enlarge every scrape. Each label was bounded on its own
// (method names: the registered handlers, or 64 learned ones; codes: OK, the protocol's and
// the configured ones, then `other`), but the product was not: 64 method names × 13 codes
// made /metrics 2.08 MB, 15,865 series, 255 ms a scrape, and 200 pipelined requests then
// blocked the server 21.4 s. The series count is capped as a whole (observe.maxSeries):
// past it, a new label combination is counted under method "other" and nothing is lost.

import t from 'tap';
import { startServer } from './helpers.ts';
import { figures } from './attack/harness.ts';
import { AUTH, CODES, HttpConn, TOKEN, answering, askHandlers, countedRegistry, growLabels, loopStall, pollBackToBack, request, samples } from './attack/observe.ts';
import type { ObserveOptions } from '../server/observe/index.ts';

/** observe.maxSeries' default. */
const MAX_SERIES = 2_000;
/** What a scrape at the cap may weigh: ~130 bytes a series is what prom-client writes for a histogram's. */
const BODY_BOUND = 400 * 1024;
// The old code blocks for tens of seconds here; the new one writes 200 × 253 KB of one
// cached body in a few hundred ms (the test reads it in the same process).
const STALL_BOUND_MS = 1000;
const METHODS = 200;

/** The sum of the values of these sample lines. */
const sum = (lines: string[]) => lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

t.test(`a client grows the label set (${METHODS} method names × ${CODES.length} codes): the scrape stays bounded`, async (t) => {
  const { registry, scrapes } = countedRegistry(false);
  const h = await startServer({ handlers: askHandlers, observe: { registry, routes: true, routesToken: TOKEN } as ObserveOptions });
  t.teardown(() => h.close());
  const c = await h.client('grower', { handlers: answering(METHODS) });
  const made = await growLabels(c, METHODS);

  const conn = await HttpConn.open(h.port);
  t.teardown(() => conn.destroy());
  const t0 = performance.now();
  const first = await conn.get('/metrics', AUTH, 30_000);
  const scrapeMs = performance.now() - t0;
  t.equal(first?.status, 200);
  const text = first!.body.toString();
  const lines = samples(text);
  figures(t, 'grown labels', { extra: `/metrics ${(first!.body.length / 1024).toFixed(0)} KB, ${lines.length} series, ${scrapeMs.toFixed(0)} ms to answer` });
  t.ok(lines.length <= MAX_SERIES, `${lines.length} series (cap ${MAX_SERIES})`);
  t.ok(first!.body.length <= BODY_BOUND, `${first!.body.length} bytes (< ${BODY_BOUND})`);

  // Nothing lost: every call made is counted, under its own labels or folded into "other".
  t.equal(sum(lines.filter((l) => l.startsWith('rpc_client_call_duration_seconds_count{'))), made, `all ${made} calls made are counted`);
  t.ok(text.includes('rpc_method="method0",rpc_response_status_code="OK"'), 'the first combinations keep their own series');

  // 200 pipelined requests for it (the old code: 21.4 s of 255 ms scrapes; a transport may
  // also close the connection past its pipelining cap), then 20 connections polling it back
  // to back for 2 s: a rendering per routesCacheMs at most.
  await new Promise((r) => setTimeout(r, 1100));
  const before = scrapes();
  const loop = loopStall();
  conn.write(request('/metrics').repeat(200));
  await conn.wait(201, 60_000);
  const polled = await pollBackToBack(h.port, '/metrics', 20, 2_000);
  const stallMs = loop.stop();
  const n = scrapes() - before;
  figures(t, 'grown labels, 200 pipelined then 20 pollers', { extra: `${conn.count - 1} + ${polled.answered} answered (${[...polled.statuses]}), ${n} scrapes, loop max ${stallMs.toFixed(0)} ms` });
  t.ok(polled.answered >= 20, `${polled.answered} answers to the pollers`);
  t.ok(n <= 4, `${n} scrapes for ${conn.count - 1 + polled.answered} requests`);
  t.ok(stallMs < STALL_BOUND_MS, `loop stalled at most ${stallMs.toFixed(0)} ms (< ${STALL_BOUND_MS})`);
});

t.test('a smaller maxSeries holds too, and the fold keeps every count', async (t) => {
  const { registry } = countedRegistry(false);
  const maxSeries = 300;
  const h = await startServer({ handlers: askHandlers, observe: { registry, routes: true, routesToken: TOKEN, maxSeries } as ObserveOptions });
  t.teardown(() => h.close());
  const c = await h.client('grower', { handlers: answering(20) });
  const made = await growLabels(c, 20);
  const text = await registry.metrics();
  const lines = samples(text);
  t.ok(lines.length <= maxSeries, `${lines.length} series (cap ${maxSeries})`);
  const counts = lines.filter((l) => l.startsWith('rpc_client_call_duration_seconds_count{'));
  t.equal(sum(counts), made, 'every call made counted');
  t.ok(counts.some((l) => l.includes('rpc_method="other"')), 'the overflow is under method "other"');
  t.ok(counts.filter((l) => !l.includes('rpc_method="other"')).length > 0, 'combinations admitted first keep their own series');
  // A pair first seen past the cap (add, OK) is still counted, under method "other".
  const served = (lines: string[]) => sum(lines.filter((l) => l.startsWith('rpc_server_call_duration_seconds_count{')));
  const before = served(lines);
  t.equal(await c.call('add', [1, 2]), 3);
  const after = samples(await registry.metrics());
  t.equal(served(after), before + 1, 'the new call is counted');
  t.notOk(after.some((l) => l.includes('rpc_method="add"')), 'under "other", not a series of its own');
  t.ok(after.length <= maxSeries, `${after.length} series still`);
});

t.test('maxSeries too small to hold the fixed metrics is refused', async (t) => {
  const { registry } = countedRegistry(false);
  const started = startServer({ handlers: askHandlers, observe: { registry, maxSeries: 10 } as ObserveOptions });
  started.then((h) => h.close(), () => {});
  await t.rejects(started, /maxSeries/);
});
