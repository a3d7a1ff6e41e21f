// Extension notifications for sessions and heartbeats. Both sides import these names.

/** Server → client, first message on every socket: `[2, "$session", [SessionInfo]]`. */
export const SESSION = '$session';
/** Client → server heartbeat; the server answers `$pong`. Either counts as traffic. */
export const PING = '$ping';
export const PONG = '$pong';
/** Either side: `[2, "$ack", [count]]` — I have received `count` responses on this socket. */
export const ACK = '$ack';

export interface SessionInfo {
  /** Session id; present it as `?sid=` when reconnecting to resume. */
  sid: string;
  /** True when this socket resumed an existing session (pending calls are re-sent). */
  resumed: boolean;
  /** How long the server keeps the session after the socket drops, ms (0: no resume). */
  resumeWindowMs: number;
  /** Heartbeat interval the client should keep, ms. */
  heartbeatMs: number;
  /** Largest message the server accepts, bytes; larger calls fail locally, not the socket. */
  maxMessageBytes: number;
}

export function isSessionInfo(v: unknown): v is SessionInfo {
  const s = v as SessionInfo;
  return (
    typeof v === 'object' && v !== null &&
    typeof s.sid === 'string' && typeof s.resumed === 'boolean' &&
    typeof s.resumeWindowMs === 'number' && typeof s.heartbeatMs === 'number' &&
    typeof s.maxMessageBytes === 'number'
  );
}
