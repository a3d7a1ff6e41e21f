// The codec rules against a live server in a child process (real uWebSockets.js, real
// sockets, port 0): decode amplification refused before it costs heap (issue 9 #1), ext
// types refused with a reason (issue 9 #4), uint64 params and int64 results (issue 10 #6),
// undefined as nil (issue 10 #5), an Error with a deep cause never leaves (issue 9 #5).
// Responses are read with plain msgpackr (BigInt for 64-bit ints), not the codec under test.

import t from 'tap';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Packr, Unpackr } from 'msgpackr';

const MiB = 1024 * 1024;
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' } as never);
const packr = new Packr({ useRecords: false });
const bytes = (...b: number[]) => Uint8Array.from(b);
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);
const head = (id: number, method: string) => cat(bytes(0x94, 0x00), packr.pack(id), packr.pack(method));

interface Child {
  proc: ChildProcess;
  port: number;
  ask(op: string): Promise<{ heap: number; held: number; errors: string[] }>;
}

async function startChild(): Promise<Child> {
  const proc = fork(fileURLToPath(new URL('./codec-liveServer.ts', import.meta.url)), {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { ready: number }) => resolve(m.ready));
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return {
    proc,
    port,
    ask: (op) =>
      new Promise((resolve) => {
        proc.once('message', resolve as never);
        proc.send({ op });
      }),
  };
}

/** A raw client: sends bytes, collects every message of every frame with its raw bytes. */
async function rawClient(port: number, uid: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=u:${uid}`);
  const got: { msg: unknown[]; raw: Buffer }[] = [];
  ws.on('message', (data: Buffer) => {
    let at = 0;
    unpackr.unpackMultiple(data, (v: unknown, start?: number, end?: number) => {
      got.push({ msg: v as unknown[], raw: data.subarray(start ?? at, end) });
      at = end ?? at;
    });
  });
  let closed: number | undefined;
  ws.on('close', (code) => (closed = code));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  return {
    ws,
    got,
    get closed() {
      return closed;
    },
    /** The response to request `id`, or undefined after `ms`. */
    async response(id: number, ms = 3000): Promise<{ msg: unknown[]; raw: Buffer } | undefined> {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const r = got.find((g) => g.msg[0] === 1 && Number(g.msg[1]) === id);
        if (r) return r;
        await new Promise((r) => setTimeout(r, 10));
      }
      return undefined;
    },
  };
}

t.test('codec rules on a live server', async (t) => {
  const child = await startChild();
  t.teardown(async () => {
    child.proc.send({ op: 'stop' });
    await new Promise((r) => setTimeout(r, 300));
    child.proc.kill();
  });
  const attacker = await rawClient(child.port, 'attacker');
  const good = await rawClient(child.port, 'good');
  t.teardown(() => (attacker.ws.terminate(), good.ws.terminate()));

  await t.test('1 MiB of empty arrays is refused INVALID_PARAMS, never decoded: the heap stays flat', async (t) => {
    const before = await child.ask('heap');
    const CALLS = 8;
    for (let id = 1; id <= CALLS; id++) {
      const h = head(id, 'hold');
      const n = MiB - h.length - 6 - 64; // under maxMessageBytes with the WebSocket header
      const be = Buffer.alloc(4);
      be.writeUInt32BE(n);
      attacker.ws.send(cat(h, bytes(0x91, 0xdd), be, Buffer.alloc(n, 0x90)));
    }
    for (let id = 1; id <= CALLS; id++) {
      const r = await attacker.response(id);
      t.same(r?.msg[2], { code: 'INVALID_PARAMS', message: 'more than 100000 values in one message' }, `call ${id}: refused`);
    }
    const after = await child.ask('heap');
    const grew = (after.heap - before.heap) / MiB;
    t.equal(after.held, 0, 'no handler is holding any of it');
    t.ok(grew < 16, `server heap after GC grew ${grew.toFixed(1)} MiB for ${CALLS} MiB sent (decoded, ~40 MiB each)`);
    t.equal(attacker.closed, undefined, 'the connection stays');
    good.ws.send(cat(head(1, 'add'), bytes(0x92, 0x02, 0x03)));
    t.same((await good.response(1))?.msg, [1, 1, null, 5], 'another client is served');
  });

  await t.test('an ext-type param is refused with a clear error', async (t) => {
    attacker.ws.send(cat(head(20, 'echo'), bytes(0x91, 0xd6, 0x05, 1, 2, 3, 4)));
    t.same((await attacker.response(20))?.msg[2], { code: 'INVALID_PARAMS', message: 'msgpack extension type 5 is not allowed' });
    attacker.ws.send(cat(head(21, 'echo'), bytes(0x91, 0xd4, 0x00, 0x00))); // msgpackr's undefined
    t.same((await attacker.response(21))?.msg[2], { code: 'INVALID_PARAMS', message: 'msgpack extension type 0 is not allowed' });
    t.equal(attacker.closed, undefined, 'the connection stays');
  });

  await t.test('add(2**40, 1) sent as uint64 answers 2**40+1 as an integer', async (t) => {
    good.ws.send(cat(head(2, 'add'), bytes(0x92, 0xcf, 0, 0, 1, 0, 0, 0, 0, 0, 0x01)));
    const r = await good.response(2);
    t.same(r?.msg, [1, 2, null, 2n ** 40n + 1n], 'the result, read as a 64-bit integer');
    t.ok(r?.raw.includes(Buffer.from('cf0000010000000001', 'hex')), `uint64 on the wire: ${r?.raw.toString('hex')}`);
    // an int64 id (C#, Python and Go packers write one for small values too)
    good.ws.send(cat(bytes(0x94, 0x00, 0xd3, 0, 0, 0, 0, 0, 0, 0, 3), packr.pack('add'), bytes(0x92, 0xd3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0x01)));
    t.same((await good.response(3))?.msg, [1, 3, null, -(2n ** 40n) + 1n], 'an int64 id and a negative int64 param');
    good.ws.send(cat(head(4, 'add'), bytes(0x92, 0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0, 0x01)));
    t.same((await good.response(4))?.msg[2], { code: 'INVALID_PARAMS', message: 'an integer beyond 2^53−1 is not allowed' }, '2^53 is refused, not rounded');
  });

  await t.test('undefined in a result arrives as nil', async (t) => {
    good.ws.send(cat(head(5, 'undef'), bytes(0x90)));
    const r = await good.response(5);
    t.same(r?.msg, [1, 5, null, { a: null, list: [1, null] }]);
    t.notOk(r?.raw.includes(Buffer.from('d40000', 'hex')), 'no ext 0 on the wire');
  });

  await t.test('a result holding an Error with a 40-deep cause is answered INTERNAL; the socket stays', async (t) => {
    good.ws.send(cat(head(6, 'load'), bytes(0x90)));
    const r = await good.response(6);
    t.same(r?.msg[2], { code: 'INTERNAL', message: 'result could not be encoded' });
    t.same(r?.msg[3], null);
    good.ws.send(cat(head(7, 'add'), bytes(0x92, 0x01, 0x01)));
    t.same((await good.response(7))?.msg, [1, 7, null, 2], 'the same socket is still served');
    t.equal(good.closed, undefined);
    const { errors } = await child.ask('heap');
    t.ok(errors.some((e) => /an Error cannot be sent/.test(e)), 'onError says why');
  });
});
