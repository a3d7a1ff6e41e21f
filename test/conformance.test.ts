// The conformance kit against Volley's own TypeScript client: starts the kit server
// (conformance/server.ts) in a child process, as any client's runner would, and runs
// every case of conformance/cases.json through client/client.ts over `ws`.

import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Unpackr } from 'msgpackr';
import { cases } from '../conformance/typescript/cases.ts';
import { runAll } from '../conformance/typescript/runAll.ts';
import { splitValues } from '../conformance/msgpackWalk.ts';
import { encode } from '../protocol/index.ts';

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

t.test('the TypeScript client passes the kit', async (t) => {
  // ~60 cases, each on fresh sockets, some waiting out heartbeats and resume windows.
  t.setTimeout(240_000);
  const only = process.env.KIT_CASES ? new Set(process.env.KIT_CASES.split(',')) : undefined;
  const results = await runAll({ base: `http://127.0.0.1:${await port}` }, list, (line) => t.comment(line), only);
  for (const r of results) t.ok(r.ok, `${r.id} ${r.title}`, { detail: r.detail });
});

// The kit must catch a client that breaks the protocol, not just bless a good one: the
// same client with a WebSocket that loses or adds one kind of message fails the cases
// that are about it.

/** A `ws` WebSocket whose outgoing / incoming messages matching a rule vanish. */
function tampered(rule: { dropOut?: (m: unknown[]) => boolean; dropIn?: (m: unknown[]) => boolean; sendOnOpen?: unknown[] }) {
  const filter = (data: Uint8Array, drop: ((m: unknown[]) => boolean) | undefined): Uint8Array | undefined => {
    if (!drop) return data;
    const kept = splitValues(data).filter((b) => !drop(unpack(b) as unknown[]));
    return kept.length ? Buffer.concat(kept) : undefined;
  };
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      if (rule.sendOnOpen) this.addEventListener('open', () => super.send(encode(rule.sendOnOpen)));
      // The client sets `onmessage`; hand it only what survives the rule.
      const inherited = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage')!;
      Object.defineProperty(this, 'onmessage', {
        get: () => inherited.get!.call(this),
        set: (fn: ((ev: { data: unknown }) => void) | null) =>
          inherited.set!.call(this, fn && ((ev: { data: unknown }) => {
            const kept = typeof ev.data === 'string' ? ev.data : filter(new Uint8Array(ev.data as ArrayBuffer), rule.dropIn);
            if (kept !== undefined) fn({ data: typeof kept === "string" ? kept : Uint8Array.from(kept).buffer });
          })),
      });
    }
    override send(data: any, ...rest: any[]): void {
      const out = filter(new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength), rule.dropOut);
      if (out) super.send(out, ...(rest as []));
    }
  };
}

const isNote = (name: string) => (m: unknown[]) => m[0] === 2 && m[1] === name;

t.test('the kit fails a client that breaks the protocol', async (t) => {
  t.setTimeout(120_000);
  const sabotage: [string, Parameters<typeof tampered>[0], string[]][] = [
    ['never sends $cancel', { dropOut: isNote('$cancel') }, ['8.1', '8.2']],
    ['ignores $cancel', { dropIn: isNote('$cancel') }, ['3.7', '3.8']],
    ['never sends $ping', { dropOut: isNote('$ping') }, ['10.1']],
    ['never sends $ack', { dropOut: isNote('$ack') }, ['1.1', '9.6']],
    ['sends before $session', { sendOnOpen: [2, '$ping', []] }, ['1.1']],
    ['loses the server\'s notifications', { dropIn: isNote('note') }, ['4.2', '5.1']],
  ];
  for (const [what, rule, ids] of sabotage) {
    const results = await runAll({ base: `http://127.0.0.1:${await port}`, WebSocket: tampered(rule) }, list, () => {}, new Set(ids));
    for (const r of results) {
      t.notOk(r.ok, `a client that ${what} fails ${r.id}`);
      t.comment(`  ${r.id}: ${r.detail}`);
    }
  }
});
