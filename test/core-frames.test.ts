// Frames that break the wire format close that socket with 4002 (PROTOCOL_ERROR); the
// server keeps serving everyone else.

import t from 'tap';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { CloseCode, encode, decodeFrame } from '../server/index.ts';
import { startServer, until } from './helpers.ts';

/** A raw ws client logged in as uid; resolves once open, records frames and the close code. */
async function raw(url: string, uid: string) {
  const ws = new WebSocket(`${url}?token=u:${uid}`);
  const got: unknown[][] = [];
  let closeCode: number | undefined;
  ws.on('message', (d: Buffer) => got.push(...(decodeFrame(d, 1000) as unknown[][])));
  ws.on('close', (code) => (closeCode = code));
  await new Promise((res, rej) => (ws.once('open', res), ws.once('error', rej)));
  return { ws, got, closed: () => closeCode };
}

t.test('garbage, text and malformed messages close only the offending socket with 4002', async (t) => {
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  const bystander = await h.client('good');

  const cases: Array<[string, (ws: WebSocket) => void]> = [
    ['random bytes', (ws) => ws.send(randomBytes(64))],
    ['bytes msgpack never uses (0xc1)', (ws) => ws.send(Buffer.from([0xc1, ...randomBytes(15)]))],
    ['a text frame', (ws) => ws.send('[0,1,"ok",[]]')],
    ['truncated msgpack', (ws) => ws.send(encode([0, 1, 'ok', ['a long enough string']]).subarray(0, 10))],
    ['a message of the wrong shape', (ws) => ws.send(encode([0, 1, 'ok']))],
    ['a message type that is not an integer', (ws) => ws.send(encode(['x', 1, 'ok', []]))],
    ['an empty message', (ws) => ws.send(encode([]))],
    ['params that are not an array', (ws) => ws.send(encode([2, 'ok', 'x']))],
  ];
  let i = 0;
  for (const [what, send] of cases) {
    const r = await raw(h.url, `bad${i++}`);
    send(r.ws);
    await until(() => r.closed() !== undefined, 2000, `close after ${what}`);
    t.equal(r.closed(), CloseCode.PROTOCOL_ERROR, `${what}: closed with 4002`);
    t.equal(await bystander.server.ok(), 'ok', `${what}: another client is still served`);
  }
  t.equal(CloseCode.PROTOCOL_ERROR, 4002);
  t.equal(bystander.state, 'open');
});

t.test('a bad request whose id is readable is answered PROTOCOL_ERROR before the close', async (t) => {
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  const r = await raw(h.url, 'x');
  r.ws.send(encode([0, 5, 42, []])); // method is not a string
  await until(() => r.closed() !== undefined, 2000, 'close');
  const reply = r.got.find((m) => m[0] === 1);
  t.match(reply, [1, 5, { code: 'PROTOCOL_ERROR' }, null]);
  t.equal(r.closed(), 4002);
});

t.test('a message type a later version adds is ignored: the socket stays, the rest of the frame runs (SPEC §11)', async (t) => {
  const h = await startServer({ handlers: { ok: () => 'ok' } });
  t.teardown(() => h.close());
  const r = await raw(h.url, 'future');
  r.ws.send(Buffer.concat([encode([2, '$ack', [0]]), encode([7, 1, 'ok', []]), encode([3]), encode([-1, 'x']), encode([0, 1, 'ok', []])]));
  await until(() => r.got.some((m) => m[0] === 1), 2000, 'the answer to the request after the unknown ones');
  t.same(r.got.find((m) => m[0] === 1), [1, 1, null, 'ok'], 'the request in the same frame was answered');
  // Not counted as received: the server's `$ack` (sent before its `$pong`) says 1, the request.
  r.ws.send(encode([2, '$ping', []]));
  await until(() => r.got.some((m) => m[1] === '$pong'), 2000, '$pong');
  const acks = r.got.filter((m) => m[0] === 2 && m[1] === '$ack').map((m) => (m[2] as number[])[0]);
  t.equal(acks[acks.length - 1], 1, `the server's $ack counts the request only (acks ${acks})`);
  t.equal(r.closed(), undefined, 'not closed');
  r.ws.close();
});
