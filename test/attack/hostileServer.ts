// A hostile server for test/attack-hostile-server.test.ts: the `ws` package's
// WebSocketServer on port 0, in a child process (`node --import tsx`) so that the 90 MiB it
// sends is not counted in the memory of the client under test. It speaks just enough of
// the protocol to open a session (`$session`), then answers the client's first request with
// the attack its URL path names (see ATTACKS). It reports over IPC: `{type:'listening', port}`
// once, and `{id, result}` for `{id, cmd:'stats'}`: the connections it saw (by URL) and the
// close code/reason each one got from the client.

import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFrame, encode } from '../../protocol/codec.ts';

const MiB = 1024 * 1024;

/** A response `[1, id, nil, <value header><payload>]` whose value is written by hand. */
function response(id: number, header: number[], payloadBytes: number, fill: number): Buffer {
  const head = [0x94, 0x01, 0xce, id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff, 0xc0, ...header];
  const out = Buffer.alloc(head.length + payloadBytes, fill);
  out.set(head, 0);
  return out;
}

const u32 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** What the server answers the first request with, by URL path. `compress`: permessage-deflate. */
export const ATTACKS: Record<string, (id: number) => { data: Buffer | string; binary: boolean; compress?: boolean }> = {
  // (a) one 90 MiB msgpack string as the call's result.
  string90: (id) => ({ data: response(id, [0xdb, ...u32(90 * MiB)], 90 * MiB, 0x61), binary: true }),
  // (b) 50 MB of nils in one message: the result is an array of 50 M nils.
  nils50: (id) => ({ data: response(id, [0xdd, ...u32(50_000_000)], 50_000_000, 0xc0), binary: true }),
  // (c) a frame of 300 replies to the call (> maxMessagesPerFrame, 256) in 3.6 KB: none may settle it.
  manyMessages: (id) => ({ data: Buffer.concat(Array.from({ length: 300 }, () => Buffer.from(encode([1, id, null, 'x'])))), binary: true }),
  // (c') within the size limit, one message of 1,000,000 values (> maxElements, 100,000).
  elements: (id) => ({ data: response(id, [0xdd, ...u32(1_000_000)], 1_000_000, 0x00), binary: true }),
  // (d) the 90 MiB string compressed (permessage-deflate) to ~90 KB on the wire.
  deflate: (id) => ({ ...ATTACKS.string90!(id), compress: true }),
  // (e) a 90 MiB text frame (not part of the protocol: decoded to a string before anyone looks).
  text90: () => ({ data: 'a'.repeat(90 * MiB), binary: false }),
};

interface Seen {
  /** The request's URL: the attack's path, and a query the test tells its clients apart by. */
  url: string;
  code?: number;
  reason?: string;
}
const seen: Seen[] = [];

// Deflate is negotiated for every socket but used only where an attack asks for it.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0 } });

wss.on('connection', (ws: WebSocket, req) => {
  const url = req.url ?? '/';
  const path = url.slice(1).split('?')[0]!;
  const entry: Seen = { url };
  seen.push(entry);
  ws.on('close', (code, reason) => {
    entry.code = code;
    entry.reason = reason.toString();
  });
  ws.on('error', () => {});
  const attack = ATTACKS[path];
  const info = { sid: `s${seen.length}`, resumed: false, resumeWindowMs: 10_000, heartbeatMs: 10_000, maxMessageBytes: MiB };
  ws.send(encode([2, '$session', [info]]), { compress: false });
  let done = false;
  ws.on('message', (data: Buffer) => {
    if (done || !attack) return;
    for (const m of decodeFrame(data, Infinity) as unknown[][]) {
      if (m[0] !== 0) continue;
      done = true;
      const a = attack(m[1] as number);
      ws.send(a.data, { binary: a.binary, compress: a.compress ?? false });
      return;
    }
  });
});

wss.on('listening', () => {
  process.send!({ type: 'listening', port: (wss.address() as { port: number }).port });
});

process.on('message', (m: { id: number; cmd: 'stats' }) => {
  if (m.cmd === 'stats') process.send!({ id: m.id, result: { connections: seen.length, seen } });
});
process.on('disconnect', () => process.exit(0));
