// Session extension messages (see protocol/SPEC.md, "Sessions and resume").

import { randomFillSync } from 'node:crypto';
export { SESSION, PING, PONG, type SessionInfo } from '../protocol/session.ts';

/** Unguessable: a session id plus a valid token for the same uid is what resumes a session. */
export function newSessionId(): string {
  if (poolUsed + SID_BYTES > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const sid = pool.toString('base64url', poolUsed, poolUsed + SID_BYTES);
  poolUsed += SID_BYTES;
  return sid;
}

// Random bytes drawn 4 KiB at a time and each used once: a randomBytes(12) per login cost
// ~6 µs (a syscall), about a fiftieth of what a whole login costs the server.
const SID_BYTES = 12;
const pool = Buffer.alloc(4092);
let poolUsed = pool.length;
