// A WebSocket client on a bare TCP socket that can send anything (hostile frames, text
// frames, bytes that are not WebSocket at all) and reads back what the server sends:
// decoded msgpack values and the close code and reason. The `ws` package would refuse to
// send most of what the fuzz tests need, and would hide the close frame's details.

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { decodeFrame } from '../../protocol/index.ts';
import { clientFrame } from '../rawClient.ts';

export interface CloseFrame {
  /** Close code from the server's close frame; 1006 when the TCP socket ended without one. */
  code: number;
  reason: string;
}

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

export class RawSocket {
  /** Every msgpack value the server sent, in order (frames split into messages). */
  readonly messages: unknown[] = [];
  /** Server frames that were not valid msgpack (should stay empty: the server never sends those). */
  readonly badFrames: Uint8Array[] = [];
  /** Set once the server closed (close frame) or the TCP socket ended. */
  close: CloseFrame | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('error', () => {}); // a reset by the server ends the socket; 'close' reports it
    socket.on('close', () => {
      this.close ??= { code: 1006, reason: '' };
      this.#upgraded?.(false);
      this.#wake();
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** Status line of the upgrade response. */
  status = '';
  #upgraded: ((ok: boolean) => void) | undefined;

  /**
   * Upgrade at `path` (e.g. "/?token=u:alice"); resolves once the server answered 101.
   * One 'data' listener from the first byte on, so frames that arrive in the same packet
   * as the 101 response (the server's `$session`) are not lost.
   */
  static open(port: number, path: string, timeoutMs = 3000, extraHeaders: string[] = []): Promise<RawSocket> {
    const socket = net.connect(port, '127.0.0.1');
    const raw = new RawSocket(socket);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        extraHeaders.map((h) => `${h}\r\n`).join('') +
        '\r\n',
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => raw.#upgraded?.(false), timeoutMs);
      raw.#upgraded = (ok) => {
        raw.#upgraded = undefined;
        clearTimeout(timer);
        if (ok) return resolve(raw);
        socket.destroy();
        reject(new Error(`upgrade refused: ${raw.status || 'no answer'}`));
      };
    });
  }

  get closed(): boolean {
    return this.close !== undefined;
  }

  /** Send one binary WebSocket message holding exactly these bytes. */
  sendBinary(payload: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(clientFrame(payload, OP_BINARY));
  }

  /** Send one text WebSocket message (not part of the protocol); bytes may be invalid UTF-8. */
  sendText(text: string | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(clientFrame(typeof text === 'string' ? Buffer.from(text) : text, OP_TEXT));
  }

  /** Write raw bytes to the TCP stream (not even a WebSocket frame). */
  sendRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Polite close: a close frame with `code`, then the socket ends. */
  sendClose(code = 1000): void {
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    if (!this.socket.destroyed) this.socket.end(clientFrame(body, OP_CLOSE));
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Wait until `pick` finds something among the messages (or the close); undefined on timeout. */
  async waitFor<T>(pick: () => T | undefined, ms = 2000): Promise<T | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** The response to request `id`, or the close if the server closed first. */
  responseOrClose(id: number, ms = 2000): Promise<{ response?: unknown[]; close?: CloseFrame } | undefined> {
    return this.waitFor(() => {
      const response = this.response(id);
      if (response) return { response };
      if (this.close) return { close: this.close };
      return undefined;
    }, ms);
  }

  /** The server's response to request `id`, if it has arrived. */
  response(id: number): unknown[] | undefined {
    return this.messages.find((m): m is unknown[] => Array.isArray(m) && m[0] === 1 && m[1] === id);
  }

  /** Wait for the server to close; undefined if it did not within `ms`. */
  waitClose(ms = 2000): Promise<CloseFrame | undefined> {
    return this.waitFor(() => this.close, ms);
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  // Server frames are never masked. Fragmented messages are not expected from uWebSockets.js
  // for the sizes used here, so each frame is taken as one message.
  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    if (this.#upgraded) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buf.subarray(0, end).toString('latin1');
      this.status = head.slice(0, head.indexOf('\r\n'));
      this.#buf = this.#buf.subarray(end + 4);
      this.#upgraded(/ 101 /.test(this.status));
    }
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      const opcode = b[0]! & 0x0f;
      let len = b[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + len) break;
      const payload = b.subarray(at, at + len);
      this.#buf = b.subarray(at + len);
      if (opcode === OP_BINARY) {
        try {
          this.messages.push(...decodeFrame(new Uint8Array(payload), Infinity));
        } catch {
          this.badFrames.push(new Uint8Array(payload));
        }
      } else if (opcode === OP_CLOSE) {
        this.close ??= {
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.subarray(2).toString('utf8'),
        };
      } else if (opcode === OP_PING) {
        // Answer pings so a long fuzz run is not taken for a dead peer.
        if (!this.socket.destroyed) this.socket.write(clientFrame(new Uint8Array(payload), 0xa));
      }
    }
    this.#wake();
  }
}
