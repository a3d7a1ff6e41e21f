// A WebSocket client written on a bare TCP socket, for tests that need what a real
// client library won't do: stop reading (a stuck reader), or send arbitrary frames.

import net from 'node:net';
import { randomBytes } from 'node:crypto';

/** Encode one masked client frame (binary by default). */
export function clientFrame(payload: Uint8Array, opcode = 0x2): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const buf = Buffer.alloc(head + 4 + len);
  buf[0] = 0x80 | opcode;
  if (len < 126) buf[1] = 0x80 | len;
  else if (len < 65536) {
    buf[1] = 0x80 | 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 0x80 | 127;
    buf.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  mask.copy(buf, head);
  for (let i = 0; i < len; i++) buf[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return buf;
}

/** Open a socket and complete the upgrade; resolves with the socket and the HTTP status line. */
export function rawUpgrade(port: number, path: string): Promise<{ socket: net.Socket; status: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const key = randomBytes(16).toString('base64');
    socket.once('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      // Anything after the headers is frame data; push it back for later readers.
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length) socket.unshift(rest);
      resolve({ socket, status: head.slice(0, head.indexOf('\r\n')) });
    };
    socket.on('data', onData);
  });
}
