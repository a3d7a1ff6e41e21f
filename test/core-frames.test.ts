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
    ['an unknown message type', (ws) => ws.send(encode([7, 1, 'ok', []]))],
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
