// WebSocket framing (RFC 6455) for the kit's recording proxy: it must see message
// boundaries to record what each side sent, to inject frames between two of the
// server's, and to read close codes. Only what the proxy needs: no extensions (the
// Volley server never negotiates permessage-deflate, so payloads are plain).

export interface Frame {
  fin: boolean;
  opcode: number;
  /** Payload, unmasked. */
  payload: Buffer;
  /** The frame exactly as it came, header and mask included (forwarded unchanged). */
  raw: Buffer;
}

/** Splits a byte stream into frames; feed it chunks, get complete frames back. */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      const masked = (b[1]! & 0x80) !== 0;
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
      const maskAt = at;
      if (masked) at += 4;
      if (b.length < at + len) break;
      const payload = Buffer.from(b.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i]! ^= b[maskAt + (i & 3)]!;
      frames.push({ fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload, raw: Buffer.from(b.subarray(0, at + len)) });
      this.#buf = b.subarray(at + len);
    }
    return frames;
  }
}

/** An unmasked (server → client) frame. */
export function serverFrame(payload: Uint8Array, opcode = 0x2): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const buf = Buffer.alloc(head + len);
  buf[0] = 0x80 | opcode;
  if (len < 126) buf[1] = len;
  else if (len < 65536) {
    buf[1] = 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 127;
    buf.writeBigUInt64BE(BigInt(len), 2);
  }
  buf.set(payload, head);
  return buf;
}

/** Close code of a close frame's payload (1005 when it carries none). */
export function closeCode(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}
