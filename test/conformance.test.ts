// The conformance kit against Volley's own TypeScript client: starts the kit server
// (conformance/server.ts) in a child process, as any client's runner would, and runs
// every case of conformance/cases.json through client/client.ts over `ws`.

import t from 'tap';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Unpackr } from 'msgpackr';
import { cases } from '../conformance/typescript/cases.ts';
import { runAll } from '../conformance/typescript/runAll.ts';
import { splitValues } from '../conformance/msgpackWalk.ts';
import { DEFAULT_LIMITS, encode, readFrame } from '../protocol/index.ts';

const unpacker = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' } as never);
const unpack = (b: Uint8Array) => unpacker.unpack(b as never);

/** Resolves with the port once the kit server prints LISTENING. */
function listening(server: ReturnType<typeof spawn>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`kit server exited (${code})`)));
  });
}

const root = fileURLToPath(new URL('..', import.meta.url));
const list = (JSON.parse(readFileSync(new URL('../conformance/cases.json', import.meta.url), 'utf8')) as { cases: { id: string; title: string; path: string }[] }).cases;

t.test('every case of cases.json has an implementation, and only those', async (t) => {
  const ids = list.map((c) => c.id);
  t.same(ids.filter((id) => !cases[id]), [], 'cases without an implementation');
  t.same(Object.keys(cases).filter((id) => !ids.includes(id)), [], 'implementations of no listed case');
  t.equal(new Set(ids).size, ids.length, 'case ids are unique');
});

t.test('vectors.json is what conformance/vectors.ts writes', async (t) => {
  const before = readFileSync(new URL('../conformance/vectors.json', import.meta.url), 'utf8');
  const child = spawn(process.execPath, ['--import', 'tsx', 'conformance/vectors.ts'], { cwd: root, stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  t.equal(readFileSync(new URL('../conformance/vectors.json', import.meta.url), 'utf8'), before);
});

// One kit server for the whole file, started as any client's runner would start it.
const server = spawn(process.execPath, ['--import', 'tsx', 'conformance/server.ts', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
t.teardown(() => void server.kill());
const port = listening(server);

/** Send one raw HTTP request, resolve with whatever came back within 2 s. */
function rawHttp(p: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    s.setTimeout(2000, () => (s.destroy(), resolve(got)));
    s.write(request);
  });
}

t.test('the control routes answer a request offering h2c as plain HTTP/1.1 (Java\'s HttpClient default)', async (t) => {
  const p = await port;
  // What java.net.http.HttpClient sends on http:// by default: an offer to upgrade to
  // HTTP/2 cleartext, which a server may ignore. Kit 1 passed it to an inner server as a
  // WebSocket upgrade and nothing ever answered.
  const offer = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\nContent-Length: 0\r\n';
  for (const [method, path, status] of [['GET', '/kit/counters', 200], ['POST', '/kit/drop?uid=nobody', 200], ['GET', '/kit/nothing', 404]] as const) {
    const answer = await rawHttp(p, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${offer}\r\n`);
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${path}: answered ${JSON.stringify(answer.slice(0, 40))}`);
    t.match(answer, /\r\n\r\n([0-9a-f]+\r\n)?\{/, 'with its JSON body');
  }
});

t.test('the TypeScript client passes the kit', async (t) => {
  // ~60 cases, each on fresh sockets, some waiting out heartbeats and resume windows.
  t.setTimeout(240_000);
  const only = process.env.KIT_CASES ? new Set(process.env.KIT_CASES.split(',')) : undefined;
  const results = await runAll({ base: `http://127.0.0.1:${await port}` }, list, (line) => t.comment(line), only);
  for (const r of results) t.ok(r.ok, `${r.id} ${r.title}`, { detail: r.detail });
});

// The kit must catch a client that breaks the protocol, not just bless a good one: the
// same client with a WebSocket that loses, adds, reorders or rewrites one kind of message
// fails the cases that are about it.

/** A message of a frame: its bytes, and its value (undefined where it does not decode). */
type Part = { m: unknown[] | undefined; bytes: Uint8Array };

interface Rule {
  dropOut?: (m: unknown[]) => boolean;
  dropIn?: (m: unknown[]) => boolean;
  sendOnOpen?: unknown[];
  /** An incoming message's replacements (none: it vanishes), or undefined to keep it. */
  mapIn?: (p: Part) => Uint8Array[] | undefined;
  /** The messages of an outgoing frame, as they should go. */
  mapOut?: (parts: Part[]) => Uint8Array[];
}

const decodeSafe = (b: Uint8Array): unknown[] | undefined => {
  try {
    const v = unpack(b);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
};

/** A `ws` WebSocket whose outgoing / incoming messages pass through a rule first. */
function tampered(rule: Rule) {
  const apply = (data: Uint8Array, drop: Rule['dropIn'], mapIn: Rule['mapIn'], mapOut: Rule['mapOut']): Uint8Array | undefined => {
    if (!drop && !mapIn && !mapOut) return data;
    let parts: Part[] = splitValues(data).map((bytes) => ({ bytes, m: decodeSafe(bytes) }));
    if (drop) parts = parts.filter((p) => !(p.m && drop(p.m)));
    let out = parts.flatMap((p) => mapIn?.(p) ?? [p.bytes]);
    if (mapOut) out = mapOut(out.map((bytes) => ({ bytes, m: decodeSafe(bytes) })));
    return out.length ? Buffer.concat(out) : undefined;
  };
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: object) {
      super(url, protocols, options);
      if (rule.sendOnOpen) this.addEventListener('open', () => super.send(encode(rule.sendOnOpen)));
      // The client sets `onmessage`; hand it only what survives the rule.
      const inherited = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage')!;
      Object.defineProperty(this, 'onmessage', {
        get: () => inherited.get!.call(this),
        set: (fn: ((ev: { data: unknown }) => void) | null) =>
          inherited.set!.call(this, fn && ((ev: { data: unknown }) => {
            const kept = typeof ev.data === 'string' ? ev.data : apply(new Uint8Array(ev.data as ArrayBuffer), rule.dropIn, rule.mapIn, undefined);
            if (kept !== undefined) fn({ data: typeof kept === 'string' ? kept : Uint8Array.from(kept).buffer });
          })),
      });
    }
    override send(data: any, ...rest: any[]): void {
      const out = apply(new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength), rule.dropOut, undefined, rule.mapOut);
      if (out) super.send(out, ...(rest as []));
    }
  };
}

const isNote = (name: string) => (m: unknown[]) => m[0] === 2 && m[1] === name;
const unknownType = (p: Part) => typeof p.m?.[0] === 'number' && ![0, 1, 2].includes(p.m[0]);
const SESSION_FIELDS = ['sid', 'resumed', 'resumeWindowMs', 'heartbeatMs', 'maxMessageBytes', 'limits'];

/**
 * Sends reliable messages on a resumed socket before the server's `$ack` (SPEC §5.4 step
 * 2): hands the client an `$ack` of its own right after a resumed `$session`, saying what
 * the socket really delivered (so the real one, later, agrees), and the client re-sends at once.
 */
function eagerResync(): Rule {
  let delivered = 0;
  return {
    mapOut: (parts) => {
      delivered += parts.filter((p) => p.m?.[0] === 0 || p.m?.[0] === 1).length;
      return parts.map((p) => p.bytes);
    },
    mapIn: (p) =>
      p.m?.[0] === 2 && p.m[1] === '$session' && (p.m[2] as { resumed?: boolean }[])[0]?.resumed ? [p.bytes, encode([2, '$ack', [delivered]])] : undefined,
  };
}

/** Answers every `$items` request the server sends twice (a client crediting it twice). */
function answersItemsTwice(): Rule {
  const ids = new Set<unknown>();
  return {
    mapIn: (p) => {
      if (p.m?.[0] === 0 && p.m[2] === '$items') ids.add(p.m[1]);
      return undefined;
    },
    mapOut: (parts) => parts.flatMap((p) => (p.m?.[0] === 1 && ids.has(p.m[1]) ? [p.bytes, p.bytes] : [p.bytes])),
  };
}

/** A response Volley's receiver refuses (SPEC §2, the floor's limits) turned into a result. */
function refusedResponse(bytes: Uint8Array): Uint8Array[] | undefined {
  const m = readFrame(bytes, DEFAULT_LIMITS)[0];
  return m?.kind === 1 && m.refused !== undefined ? [encode([1, m.id, null, 'accepted'])] : undefined;
}

/** Moves each `$cancel [id]` ahead of the request `id` it follows in the same frame. */
function cancelFirst(parts: Part[]): Uint8Array[] {
  const out = [...parts];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    if (p.m?.[0] !== 2 || p.m[1] !== '$cancel') continue;
    const at = out.findIndex((q) => q.m?.[0] === 0 && q.m[1] === (p.m![2] as number[])[0]);
    if (at >= 0 && at < i) out.splice(i, 1), out.splice(at, 0, p);
  }
  return out.map((p) => p.bytes);
}

t.test('the kit fails a client that breaks the protocol', async (t) => {
  t.setTimeout(240_000);
  const sabotage: [string, Parameters<typeof tampered>[0], string[]][] = [
    ['never sends $cancel', { dropOut: isNote('$cancel') }, ['8.1', '8.2']],
    ['ignores $cancel', { dropIn: isNote('$cancel') }, ['3.7', '3.8']],
    ['never sends $ping', { dropOut: isNote('$ping') }, ['10.1']],
    ['never sends $ack', { dropOut: isNote('$ack') }, ['1.1', '9.6']],
    ['sends before $session', { sendOnOpen: [2, '$ping', []] }, ['1.1']],
    ['loses the server\'s notifications', { dropIn: isNote('note') }, ['4.2', '5.1']],
    // Issue 25: what a Java client's author broke on purpose and kit 1 let through, and the
    // gaps kit 2 closes.
    ['sends $ack [0] before $session', { sendOnOpen: [2, '$ack', [0]] }, ['1.1']],
    ['sends reliable messages on a resumed socket before the server\'s $ack', eagerResync(), ['9.14']],
    ['counts unknown message types as reliable ones', { mapIn: (p) => (unknownType(p) ? [encode([1, 4_000_000_000, null, null])] : undefined) }, ['4.5']],
    ['closes on an unknown message type', { mapIn: (p) => (unknownType(p) ? [Uint8Array.of(0xc1)] : undefined) }, ['4.5']],
    ['refuses a $session with fields it does not know', { mapIn: (p) => (p.m?.[1] === '$session' && Object.keys((p.m[2] as object[])[0]!).some((k) => !SESSION_FIELDS.includes(k)) ? [Uint8Array.of(0xc1)] : undefined) }, ['1.10']],
    ['takes a response SPEC §2 refuses as a result', { mapIn: (p) => refusedResponse(p.bytes) }, ['6.10']],
    ['sends $cancel before the re-sent request', { mapOut: cancelFirst }, ['9.12']],
    // The feature `items` (SPEC 1.1): sent unnamed, and the credit for one `$items` given twice.
    ['sends $items without naming the feature in $features', { dropOut: isNote('$features') }, ['12.7']],
    ['answers each $items twice', answersItemsTwice(), ['12.13']],
    ['cancels only requests it re-sends, not those the server had', { mapOut: (parts) => parts.filter((p, i) => !(p.m?.[0] === 2 && p.m[1] === '$cancel' && !parts.slice(0, i).some((q) => q.m?.[0] === 0 && q.m[1] === (p.m![2] as number[])[0]))).map((p) => p.bytes) }, ['9.13']],
    ['never sends $cancel, offline either', { dropOut: isNote('$cancel') }, ['9.12', '9.13']],
  ];
  for (const [what, rule, ids] of sabotage) {
    const results = await runAll({ base: `http://127.0.0.1:${await port}`, WebSocket: tampered(rule) }, list, () => {}, new Set(ids));
    for (const r of results) {
      t.notOk(r.ok, `a client that ${what} fails ${r.id}`);
      t.comment(`  ${r.id}: ${r.detail}`);
    }
  }
});
