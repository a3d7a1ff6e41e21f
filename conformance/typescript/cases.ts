// The kit's cases, run by Volley's own TypeScript client (client/client.ts over `ws`).
// Also the reference for a runner in another language: one function per case id of
// cases.json, each doing what the case's "do" says and throwing if "expect" fails.

import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { connect } from '../../client/index.ts';
import { RpcError, decodeFrame, encode } from '../../protocol/index.ts';
import { echoValues, vectorFile, untag } from '../values.ts';
import { same, show, sleep } from '../state.ts';
import { codecMismatches } from './codec.ts';
import { check, later, rejects, settle, uidFor, until, type Client, type Run } from './harness.ts';

/** Wait until an asynchronous condition (asked of the kit) holds; throw after `ms`. */
async function until2(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export type CaseFn = (r: Run) => Promise<void>;

/**
 * An upload (SPEC §12): the integers 1 … n as an async generator; after item `failAfter` it
 * fails with `code`; when it produces item `at` it awaits `run` first. `state` says how many
 * it produced and whether its cleanup (finally) ran.
 */
function upTo(n: number, opts: { failAfter?: number; code?: string; at?: number; run?: () => Promise<unknown> } = {}) {
  const state = { produced: 0, closed: false };
  async function* gen() {
    try {
      for (let i = 1; i <= n; i++) {
        if (opts.failAfter !== undefined && i > opts.failAfter) throw new RpcError(opts.code!, 'the upload failed');
        if (i === opts.at) await opts.run?.();
        state.produced++;
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, iterable: gen() };
}

const caseList = (JSON.parse(readFileSync(new URL('../cases.json', import.meta.url), 'utf8')) as { cases: { id: string; frames?: Record<string, unknown> }[] }).cases;
/** A case of cases.json (for its `frames`). */
const caseOf = (id: string) => caseList.find((c) => c.id === id)!;

/** Connect, run kit.callMe(id), expect {ok: true}. */
const script: CaseFn = async (r) => {
  const c = await r.connect();
  const v = (await c.call('kit.callMe', [r.id], { timeoutMs: 20_000 })) as { ok: boolean; detail: string };
  check(v.ok, `server script: ${v.detail}`);
};

/** As `script`, then the kit's verdict on the wire. */
const scriptAndVerdict: CaseFn = async (r) => {
  const uid = uidFor(r.id);
  const c = await r.connect(uid);
  const v = (await c.call('kit.callMe', [r.id], { timeoutMs: 20_000 })) as { ok: boolean; detail: string };
  check(v.ok, `server script: ${v.detail}`);
  await r.verdict(uid);
};

/** The over-limit call fails INVALID_PARAMS, the connection works after, nothing was sent. */
function overLimit(call: (c: Client, marker: string) => Promise<unknown>): CaseFn {
  return async (r) => {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    await rejects(call(c, `over:${r.id}`), 'INVALID_PARAMS');
    check((await c.call('echo', [1])) === 1, 'the connection did not survive');
    await r.verdict(uid);
  };
}

const nested = (depth: number): unknown => (depth <= 1 ? [] : [nested(depth - 1)]);

async function injectAndClose(r: Run, hex: string, opcode: number): Promise<void> {
  const uid = uidFor(r.id);
  const c = await r.connect(uid);
  const pending = settle(c.call('sleep', [5000], { timeoutMs: 10_000 }));
  await r.http('POST', '/kit/inject', { uid, hex, opcode });
  await until(() => c.state === 'closed', 2000, 'the client to close');
  check(c.closeInfo?.code === 4002, `closed with ${c.closeInfo?.code}, want 4002`);
  check((await pending).code === 'DISCONNECTED', 'pending call did not reject DISCONNECTED');
  await sleep(300);
  await r.verdict(uid);
}

export const cases: Record<string, CaseFn> = {
  async '1.1'(r) {
    const uid = uidFor(r.id);
    await r.connect(uid);
    await sleep(100);
    await r.verdict(uid);
  },
  async '1.2'(r) {
    const c = await r.connect(uidFor(r.id), { tokenIn: 'protocol' });
    check((await c.call('echo', ['hi'])) === 'hi', 'echo failed');
  },
  async '1.3'(r) {
    const e = await rejects(r.connect(`bad-${uidFor(r.id)}`), 'REFUSED');
    const d = e.data as { status?: number; closeCode?: number };
    check(d?.status === 401 || d?.closeCode === 4401, `data ${show(d)}`);
  },
  async '1.4'(r) {
    const uid = uidFor(r.id);
    const first = await r.connect(uid);
    const e = await rejects(r.connect(uid), 'REFUSED');
    const d = e.data as { status?: number; closeCode?: number };
    check(d?.status === 409 || d?.closeCode === 4409, `data ${show(d)}`);
    check((await first.call('echo', [1])) === 1, 'the first client stopped working');
  },
  async '1.5'(r) {
    const srv = await import('node:net').then((net) => net.createServer());
    const port = await new Promise<number>((res) => srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port)));
    await new Promise((res) => srv.close(res));
    const o = await settle(connect(`ws://127.0.0.1:${port}/`, { token: 'x', WebSocket: WebSocket as never, reconnect: false }));
    check(o.code === 'DISCONNECTED', `expected DISCONNECTED, got ${o.code}`);
  },
  async '1.6'(r) {
    const uid = uidFor(r.id);
    const one = await r.connect(uid);
    const pending = settle(one.call('sleep', [5000], { timeoutMs: 10_000 }));
    const two = await r.connect(uid);
    await until(() => one.state === 'closed', 2000, 'the replaced client to close');
    check(one.closeInfo?.code === 4000, `closed with ${one.closeInfo?.code}`);
    check((await pending).code === 'DISCONNECTED', 'pending call did not reject DISCONNECTED');
    check((await two.call('echo', [2])) === 2, 'the new client does not work');
    await sleep(300);
    await r.verdict(uid);
  },
  async '1.7'(r) {
    const uid = uidFor(r.id);
    await r.connect(uid);
    await r.verdict(uid);
  },
  async '1.8'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    check((await r.counters()).sessions.includes(uid), 'session not listed while open');
    c.close();
    const end = Date.now() + 1000;
    while ((await r.counters()).sessions.includes(uid)) {
      check(Date.now() < end, 'the session outlived a normal close');
      await sleep(50);
    }
  },
  async '1.9'(r) {
    const a = await r.connect();
    const opens: boolean[] = [];
    a.on('open', (e) => opens.push(e.resumed));
    const call = later(a.call('sleep', [600]));
    // Requests run in arrival order: once echo answers, sleep is running on the server.
    // Without it, a server with nothing running closes at once and the kit starts a fresh one.
    await a.call('echo', [1]);
    await r.http('POST', '/kit/shutdown', { path: 'doomed', graceMs: 3000 });
    await sleep(50);
    const e = await rejects(r.connect(), 'REFUSED');
    const d = e.data as { status?: number; closeCode?: number };
    check(d?.status === 503 || d?.closeCode === 4503, `data ${show(d)}`);
    check((await call) === 'slept', 'the running call did not finish');
    await until(() => a.closeInfo?.code === 1001, 3000, 'close 1001');
    await until(() => opens.length > 0, 5000, 'the reconnect');
    check(opens[0] === false && a.state === 'open', `reopened with resumed ${opens[0]}`);
  },
  async '1.10'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    check((await c.call('echo', ['hi'])) === 'hi', 'echo failed');
    check(c.state === 'open', `state ${c.state}`);
    await r.verdict(uid);
  },
  async '2.1'(r) {
    const c = await r.connect();
    for (const v of echoValues) {
      const got = await c.call('echo', [v]);
      check(same(got, v), `${show(v)} came back as ${show(got)}`);
    }
  },
  async '2.2'(r) {
    const c = await r.connect();
    check((await c.call('add', [2, 40])) === 42, 'add(2, 40) is not 42');
  },
  async '2.3'(r) {
    const c = await r.connect();
    const calls = Array.from({ length: 300 }, (_, i) => Promise.all([c.call('sleep', [(i * 7) % 50, '']), c.call('echo', [i])]));
    const got = await Promise.all(calls);
    got.forEach(([s, e], i) => check(s === 'slept' && e === i, `call ${i}: ${show([s, e])}`));
  },
  async '2.4'(r) {
    const c = await r.connect();
    const e = await rejects(c.call('fail', ['APP_NOPE', 'not allowed', { need: [1, 'two'] }]), 'APP_NOPE');
    check(e.message === 'not allowed' && same(e.data, { need: [1, 'two'] }), `got ${e.message} ${show(e.data)}`);
  },
  async '2.5'(r) {
    const c = await r.connect();
    const e = await rejects(c.call('internalError', []), 'INTERNAL');
    check(!/secret/.test(e.message), 'the handler detail leaked');
  },
  async '2.6'(r) {
    const c = await r.connect();
    await rejects(c.call('noSuchMethod', [1]), 'METHOD_NOT_FOUND');
    check((await c.call('echo', [1])) === 1, 'connection lost');
  },
  async '2.7'(r) {
    const c = await r.connect();
    const o = await settle(c.call('$echo', [1]));
    check(o.code === 'METHOD_NOT_FOUND' || o.code === 'INVALID_PARAMS', `got ${o.code ?? show(o.value)}`);
    check((await c.call('echo', [1])) === 1, 'connection lost');
  },
  async '2.8'(r) {
    const c = await r.connect();
    await rejects(c.call('add', [1]), 'INVALID_PARAMS');
  },
  async '2.9'(r) {
    const c = await r.connect();
    const v = await c.call('nothing', []);
    check(v === null || v === undefined, `got ${show(v)}`);
  },
  '3.1': script, '3.2': script, '3.3': script, '3.4': script, '3.5': script,
  '3.6': script, '3.7': script, '3.8': script, '3.9': script,
  async '4.1'(r) {
    const c = await r.connect();
    const key = `note-${r.id}-${process.pid}`;
    c.notify('kit.note', key);
    check((await c.call('kit.notes', [key])) === 1, 'the notification did not arrive once');
  },
  async '4.2'(r) {
    const c = await r.connect();
    check((await c.call('notifyMe', ['note', 20, 'n'])) === 20, 'notifyMe failed');
    await until(() => c.notes.length >= 20, 1000, '20 notes');
    c.notes.forEach((args, i) => check(same(args, ['n', i]), `note ${i}: ${show(args)}`));
  },
  async '4.3'(r) {
    const c = await r.connect();
    check((await c.call('notifyMe', ['noSuchHandler', 3])) === 3, 'notifyMe failed');
    check((await c.call('echo', [1])) === 1 && c.state === 'open', 'connection lost');
  },
  async '4.4'(r) {
    const c = await r.connect();
    c.notify('noSuchHandler', 1);
    check((await c.call('echo', [1])) === 1, 'connection lost');
  },
  async '4.5'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    for (const hex of caseOf(r.id).frames!.inject as string[]) await c.call('kit.inject', [hex]);
    await sleep(600);
    check((await c.call('echo', [1])) === 1 && c.state === 'open', `connection lost (${c.closeInfo?.code})`);
    check(c.notes.length === 1 && same(c.notes[0], ['after']), `notes ${show(c.notes)}`);
    await r.verdict(uid);
  },
  async '5.1'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    check((await c.call('kit.batch', [5])) === 5, 'kit.batch failed');
    await until(() => c.notes.length >= 5, 1000, 'five notes');
    c.notes.forEach((args, i) => check(same(args, ['batch', i]), `note ${i}: ${show(args)}`));
    await r.verdict(uid);
  },
  async '5.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const got = await Promise.all(Array.from({ length: 600 }, (_, i) => c.call('echo', [i])));
    got.forEach((v, i) => check(v === i, `echo ${i} → ${show(v)}`));
    await r.verdict(uid);
  },
  '5.3': (r) => injectAndClose(r, 'c1', 2),
  '5.4': (r) => injectAndClose(r, Buffer.from('hello').toString('hex'), 1),
  async '6.1'() {
    const wrong = codecMismatches(encode, decodeFrame);
    check(wrong.length === 0, `${wrong.length} vectors: ${wrong.slice(0, 8).join('; ')}`);
  },
  async '6.2'(r) {
    const c = await r.connect();
    const values = vectorFile.wire['6.2']!.map((w) => untag(w.value));
    const v = (await c.call('kit.wire', ['6.2', ...values])) as { ok: boolean; detail: string };
    check(v.ok, v.detail);
  },
  async '6.3'(r) {
    const c = await r.connect();
    await c.call('kit.inject', ['9302a46e6f746594d30000010000000000cf0000010000000000cf001fffffffffffffd3ffffff0000000000']);
    await until(() => c.notes.length >= 1, 1000, 'the note');
    const got = c.notes[0]!;
    const want = [2 ** 40, 2 ** 40, 2 ** 53 - 1, -(2 ** 40)];
    check(got.every((x, i) => typeof x === 'number' && x === want[i]), `got ${show(got)}`);
  },
  async '6.4'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const got = (await c.call('kit.numbers', [])) as unknown[];
    const want = [2 ** 32, 2 ** 40, 1_700_000_000_000, 2 ** 53 - 1, -(2 ** 31) - 1, -(2 ** 40), -(2 ** 53 - 1)];
    check(got.every((x, i) => typeof x === 'number' && x === want[i]), `got ${show(got)}`);
    await r.verdict(uid);
  },
  async '6.5'(r) {
    const c = await r.connect();
    const v = (await c.call('kit.wire', ['6.5', 1.5, -0.25, 0.1, 1e300])) as { ok: boolean; detail: string };
    check(v.ok, v.detail);
    check((await c.call('echo', [1.5])) === 1.5, 'echo(1.5)');
  },
  async '6.6'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const v = (await c.call('kit.wire', ['6.6', [1, undefined, null]])) as { ok: boolean; detail: string };
    check(v.ok, v.detail);
    const got = (await c.call('kit.undefinedResult', [])) as { a?: unknown; list: unknown[]; n: unknown };
    check(got.a == null && got.list.length === 2 && got.list[1] == null && got.n == null, `got ${show(got)}`);
    await r.verdict(uid);
  },
  '6.7': overLimit((c, m) => c.call('echo', [m, new Set([1])])),
  async '6.8'(r) {
    const c = await r.connect();
    await c.call('kit.inject', ['9302a46e6f746592a3657874d40100']);
    await c.call('kit.inject', ['9302a46e6f746592a3626967cf0020000000000000']);
    await c.call('kit.inject', ['9302a46e6f746591a26f6b']);
    check((await c.call('echo', [1])) === 1 && c.state === 'open', 'connection lost');
    check(c.notes.length === 1 && c.notes[0]![0] === 'ok', `notes ${show(c.notes)}`);
  },
  async '6.9'(r) {
    const c = await r.connect();
    await c.call('kit.inject', ['9302a46e6f746591d7ff1d5353005fee6600']);
    await until(() => c.notes.length >= 1, 1000, 'the note');
    const d = c.notes[0]![0];
    check(d instanceof Date && d.toISOString() === '2021-01-01T00:00:00.123Z', `got ${show(d)}`);
  },
  async '6.10'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    for (const kind of ['ext', 'unsafe', 'deep', 'key']) {
      const o = await settle(c.call('kit.badReply', [kind]));
      check(o.code === 'PROTOCOL_ERROR', `${kind}: expected PROTOCOL_ERROR, got ${o.code ?? `result ${show(o.value)}`}`);
    }
    check((await c.call('echo', [1])) === 1 && c.state === 'open', 'the connection did not survive');
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    await r.http('POST', '/kit/drop', { uid });
    await until(() => resumed !== undefined, 3000, 'the resume');
    check(resumed === true, 'reopened as a new session');
    check((await c.call('echo', [2])) === 2, 'echo after the resume');
    await r.verdict(uid);
  },
  async '6.11'(r) {
    const c = await r.connect();
    let opens = 0;
    c.on('open', () => opens++);
    for (const kind of ['abyss', 'ext-nested', 'ts-length']) {
      const o = await settle(c.call('kit.badReply', [kind]));
      check(o.code === 'PROTOCOL_ERROR', `${kind}: expected PROTOCOL_ERROR, got ${o.code ?? `result ${show(o.value)}`}`);
    }
    check((await c.call('echo', [1])) === 1 && c.state === 'open' && opens === 0, 'the session did not stay open');
  },
  async '6.12'(r) {
    const c = await r.connect();
    let opens = 0;
    c.on('open', () => opens++);
    const o = await settle(c.call('kit.badReply', ['ts-range']));
    check(o.code === 'PROTOCOL_ERROR', `expected PROTOCOL_ERROR, got ${o.code ?? `result ${show(o.value)}`}`);
    check((await c.call('echo', [1])) === 1 && c.state === 'open' && opens === 0, 'the session did not stay open');
  },
  async '7.1'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid, { path: '/tight/' });
    await rejects(c.call('echo', [`over:${r.id}`, nested(10)]), 'INVALID_PARAMS');
    check((await c.call('echo', [1])) === 1, 'the connection did not survive');
    await r.verdict(uid);
  },
  '7.2': overLimit((c, m) => c.call('echo', [m, ...Array.from({ length: 39 }, (_, i) => i)])),
  '7.3': overLimit((c, m) => c.call('m'.repeat(129), [m])),
  '7.4': overLimit((c, m) => c.call('echo', [m, new Uint8Array(1024 * 1024 + 1)])),
  '7.5': overLimit((c, m) => c.call('echo', [m, new Array(100_001).fill(0)])),
  async '7.6'(r) {
    const c = await r.connect(uidFor(r.id), { limits: { maxMessagesPerFrame: 1024 } });
    const v = (await c.call('kit.callMe', [r.id], { timeoutMs: 20_000 })) as { ok: boolean; detail: string };
    check(v.ok, `server script: ${v.detail}`);
  },
  async '8.1'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const t0 = Date.now();
    await rejects(c.call('sleep', [5000, `k-${uid}`], { timeoutMs: 150 }), 'TIMEOUT');
    check(Date.now() - t0 < 1000, 'the deadline came late');
    await sleep(300);
    await r.verdict(uid);
  },
  async '8.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await rejects(c.call('sleep', [5000, `k-${uid}`], { signal: ac.signal }), 'CANCELLED');
    await sleep(300);
    await r.verdict(uid);
  },
  async '8.3'(r) {
    const c = await r.connect();
    await rejects(c.call('stubborn', [300], { timeoutMs: 100 }), 'TIMEOUT');
    await sleep(400);
    check((await c.call('echo', [1])) === 1 && c.state === 'open', 'connection lost');
  },
  async '9.1'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const key = `k-${uid}`;
    const p = later(c.call('count', [key, 400]));
    await sleep(100);
    await r.http('POST', '/kit/drop', { uid });
    check((await p) === 1, 'the call did not answer 1');
    check(resumed === true, `reopened with resumed ${resumed}`);
    check((await r.counters()).runs[key] === 1, 'the handler ran more than once');
    await r.verdict(uid);
  },
  async '9.15'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const key = `k-${uid}`;
    const p = later(c.call('count', [key, 400]));
    await sleep(100);
    await r.http('POST', '/kit/drop', { uid, code: 1001 });
    await until(() => c.closeInfo?.code === 1001, 3000, 'close 1001');
    check((await p) === 1, 'the call did not answer 1');
    check(resumed === true, `reopened with resumed ${resumed}`);
    check((await r.counters()).runs[key] === 1, 'the handler ran more than once');
    await r.verdict(uid);
  },
  async '9.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const key = `k-${uid}`;
    await r.http('POST', '/kit/stall', { uid });
    const p = later(c.call('count', [key]));
    await r.untilRuns([key], 2000);
    await sleep(100); // the request has surely been read: re-sending it after the resume is a duplicate
    await r.http('POST', '/kit/drop', { uid });
    check((await p) === 1, 'the call did not answer 1');
    check((await r.counters()).runs[key] === 1, 'the handler ran more than once');
    await r.verdict(uid);
  },
  async '9.3'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const keys = Array.from({ length: 50 }, (_, i) => `k-${uid}-${i}`);
    const calls = keys.map((k, i) => later(c.call('count', [k, (i * 13) % 300], { timeoutMs: 15_000 })));
    await sleep(50);
    await r.http('POST', '/kit/stall', { uid });
    await sleep(150);
    await r.http('POST', '/kit/drop', { uid });
    const got = await Promise.all(calls);
    check(got.every((v) => v === 1), `answers ${show(got)}`);
    const runs = (await r.counters()).runs;
    const twice = keys.filter((k) => runs[k] !== 1);
    check(twice.length === 0, `ran ≠ once: ${twice.map((k) => `${k}=${runs[k]}`).join(', ')}`);
    await r.verdict(uid);
  },
  '9.4': scriptAndVerdict,
  '9.9': scriptAndVerdict,
  '9.10': scriptAndVerdict,
  async '9.11'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const key = `k-${uid}`;
    await r.http('POST', '/kit/stall', { uid, dir: 'up' });
    const p = later(c.call('count', [key], { timeoutMs: 15_000 }));
    await sleep(200);
    await r.http('POST', '/kit/drop', { uid });
    check((await p) === 1, 'the call did not answer 1');
    check((await r.counters()).runs[key] === 1, 'the handler did not run exactly once');
    await r.verdict(uid);
  },
  async '9.12'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    await r.http('POST', '/kit/stall', { uid, dir: 'up' });
    const t0 = Date.now();
    const p = settle(c.call('sleep', [5000, `k-${uid}`], { timeoutMs: 300 }));
    await sleep(100);
    await r.http('POST', '/kit/drop', { uid, refuseMs: 700 });
    check((await p).code === 'TIMEOUT', 'the call did not reject TIMEOUT');
    check(Date.now() - t0 < 1000, 'the deadline came late');
    await until(() => c.state === 'open', 5000, 'the resume');
    await sleep(500);
    await r.verdict(uid);
  },
  async '9.13'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const t0 = Date.now();
    const p = settle(c.call('sleep', [5000, `k-${uid}`], { timeoutMs: 500 }));
    await sleep(150);
    await r.http('POST', '/kit/drop', { uid, refuseMs: 700 });
    check((await p).code === 'TIMEOUT', 'the call did not reject TIMEOUT');
    check(Date.now() - t0 < 1200, 'the deadline came late');
    await until(() => c.state === 'open', 5000, 'the resume');
    await sleep(500);
    await r.verdict(uid);
  },
  async '9.14'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    check((await c.call('echo', [0])) === 0, 'echo');
    await r.http('POST', '/kit/drop', { uid, refuseMs: 300 });
    await until(() => c.state !== 'open', 1000, 'the client to see the drop');
    const keys = Array.from({ length: 3 }, (_, i) => `k-${uid}-${i}`);
    const got = await Promise.all(keys.map((k) => c.call('count', [k, 0], { timeoutMs: 15_000 })));
    check(got.every((v) => v === 1), `answers ${show(got)}`);
    await r.untilRuns(keys, 1000);
    await sleep(100);
    await r.verdict(uid);
  },
  async '9.5'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    check((await c.call('echo', [0])) === 0, 'echo');
    await r.http('POST', '/kit/stall', { uid });
    const keys = Array.from({ length: 5 }, (_, i) => `k-${uid}-${i}`);
    const calls = keys.map((k) => later(c.call('count', [k, 0], { timeoutMs: 15_000 })));
    await r.untilRuns(keys, 2000);
    await sleep(100);
    await r.http('POST', '/kit/drop', { uid });
    const got = await Promise.all(calls);
    check(got.every((v) => v === 1), `answers ${show(got)}`);
    await sleep(100);
    await r.verdict(uid);
  },
  async '9.6'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    await Promise.all(Array.from({ length: 300 }, (_, i) => c.call('echo', [i])));
    await sleep(200);
    await r.verdict(uid);
  },
  '9.7': script,
  async '9.8'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid, { path: '/short/' });
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const p = settle(c.call('sleep', [5000], { timeoutMs: 10_000 }));
    await r.http('POST', '/kit/drop', { uid, refuseMs: 800 });
    check((await p).code === 'DISCONNECTED', 'the pending call did not reject DISCONNECTED');
    await until(() => resumed !== undefined && c.state === 'open', 3000, 'the reconnect');
    check(resumed === false, 'reopened as resumed');
    check((await c.call('echo', [1])) === 1, 'the new session does not work');
  },
  async '10.1'(r) {
    const uid = uidFor(r.id);
    await r.connect(uid, { path: '/fast/' });
    await r.verdict(uid, r.id, 3000);
  },
  async '10.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid, { path: '/fast/' });
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const p = later(c.call('count', [`k-${uid}`, 600], { timeoutMs: 10_000 }));
    await r.http('POST', '/kit/stall', { uid });
    check((await p) === 1, 'the call did not answer 1');
    check(resumed === true, `reopened with resumed ${resumed}`);
    await r.verdict(uid);
  },
  async '10.3'(r) {
    const c = await r.connect(uidFor(r.id), { path: '/fast/' });
    const v = (await c.call('kit.callMe', [r.id], { timeoutMs: 20_000 })) as { ok: boolean; detail: string };
    check(v.ok, `server script: ${v.detail}`);
  },
  async '11.1'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid, { path: '/slow/' });
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    await r.http('POST', '/kit/stall', { uid, ms: 1500 });
    const got = await Promise.all(Array.from({ length: 64 }, () => settle(c.call('blob', [131072], { timeoutMs: 20_000 }))));
    const bad = got.filter((o) => !(o.value instanceof Uint8Array && o.value.length === 131072));
    check(bad.length === 0, `${bad.length} of 64 failed, e.g. ${bad[0]?.code}: ${bad[0]?.message}`);
    check(resumed === true, `reopened with resumed ${resumed}`);
    await r.verdict(uid);
  },
  async '11.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid, { path: '/flood/' });
    const got = await Promise.all(Array.from({ length: 2000 }, (_, i) => settle(c.call('echo', [i]))));
    check(got.some((o) => o.value !== undefined), 'no call went through');
    check(got.some((o) => o.code === 'RATE_LIMITED' || o.code === 'DISCONNECTED'), 'nothing was refused');
    await until(() => c.state === 'closed', 2000, 'the flooding client to be closed');
    check(c.closeInfo?.code === 4029, `closed with ${c.closeInfo?.code}, want 4029`);
    await sleep(300);
    await r.verdict(uid);
  },
  async '12.1'(r) {
    const c = await r.connect();
    const got: unknown[] = [];
    for await (const x of c.stream('countTo', [50])) got.push(x);
    check(show(got) === show(Array.from({ length: 50 }, (_, i) => i)), `items ${show(got)}`);
    await until2(async () => (await r.counters()).pending.incoming === 0, 2000, 'nothing pending on the server');
  },
  async '12.2'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const key = `k-${uid}`;
    const got: unknown[] = [];
    for await (const x of c.stream('countTo', [1_000_000, key])) {
      got.push(x);
      if (got.length === 3) break;
    }
    check(show(got) === show([0, 1, 2]), `items ${show(got)}`);
    await until2(async () => (await r.counters()).cancelled[key] === 1, 2000, "the server's generator to stop");
  },
  async '12.3'(r) {
    const c = await r.connect();
    const got: unknown[] = [];
    const e = await rejects((async () => {
      for await (const x of c.stream('failAfter', [2, 'GAME_OVER'])) got.push(x);
    })(), 'GAME_OVER');
    check(show(got) === show([0, 1]), `items ${show(got)} before ${e.code}`);
    check((await c.call('echo', [7])) === 7, 'the session stays');
  },
  async '12.4'(r) {
    const c = await r.connect();
    const v = await c.call('sumUpload', [100]);
    check(show(v) === show({ sum: 5050, items: 100 }), `answer ${show(v)}`);
  },
  async '12.5'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const got: number[] = [];
    for await (const x of c.stream('countTo', [2000])) {
      got.push(x as number);
      if (got.length === 500) await r.http('POST', '/kit/drop', { uid });
    }
    const wrong = got.findIndex((x, i) => x !== i);
    check(got.length === 2000 && wrong < 0, `${got.length} items, first out of place at ${wrong}`);
    check(resumed === true, `reopened with resumed ${resumed}`);
    await r.verdict(uid);
  },
  async '12.6'(r) {
    const c = await r.connect();
    const o = await settle(c.call('countTo', [3]));
    check(o.code === 'CANCELLED' || o.code === 'METHOD_NOT_FOUND', `the plain call got ${o.code ?? `result ${show(o.value)}`}`);
    check((await c.call('echo', [1])) === 1, 'the session stays');
  },
  async '12.7'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const v = await c.call('sumStream', [upTo(100).iterable]);
    check(show(v) === show({ sum: 5050, items: 100, inOrder: true }), `answer ${show(v)}`);
    await r.verdict(uid);
  },
  async '12.8'(r) {
    const c = await r.connect();
    const up = upTo(1_000_000);
    const v = await c.call('takeUpload', [3, up.iterable]);
    check(show(v) === show([1, 2, 3]), `answer ${show(v)}`);
    await until(() => up.state.closed, 2000, "the upload's iterable to be closed");
    check(up.state.produced <= 3 + 2 * 16, `${up.state.produced} items produced`);
  },
  async '12.9'(r) {
    const c = await r.connect();
    const v = await c.call('uploadError', [upTo(10, { failAfter: 2, code: 'BAD_CHUNK' }).iterable]);
    check(show(v) === show({ items: 2, code: 'BAD_CHUNK' }), `answer ${show(v)}`);
    check((await c.call('echo', [1])) === 1, 'the session stays');
  },
  '12.10': script,
  async '12.11'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    let resumed: boolean | undefined;
    c.on('open', (e) => (resumed = e.resumed));
    const v = await c.call('sumStream', [upTo(2000, { at: 500, run: () => r.http('POST', '/kit/drop', { uid }) }).iterable], { timeoutMs: 20_000 });
    check(show(v) === show({ sum: 2001000, items: 2000, inOrder: true }), `answer ${show(v)}`);
    check(resumed === true, `reopened with resumed ${resumed}`);
    await r.verdict(uid);
  },
  async '12.12'(r) {
    await script(r);
    const c = r.clients[0]!;
    check((await c.call('echo', [1])) === 1, 'the session stays');
  },
  async '12.13'(r) {
    const uid = uidFor(r.id);
    const c = await r.connect(uid);
    const got: unknown[] = [];
    for await (const x of c.stream('countTo', [50])) got.push(x);
    check(show(got) === show(Array.from({ length: 50 }, (_, i) => i)), `items ${show(got)}`);
    await r.verdict(uid);
  },
};

