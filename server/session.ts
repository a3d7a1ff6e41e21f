// Session extension messages (see protocol/SPEC.md, "Sessions and resume").

import { randomBytes } from 'node:crypto';
export { SESSION, PING, PONG, type SessionInfo } from '../protocol/session.ts';

/** Unguessable: a session id plus a valid token for the same uid is what resumes a session. */
export function newSessionId(): string {
  return randomBytes(12).toString('base64url');
}
