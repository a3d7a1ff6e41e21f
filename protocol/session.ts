// Extension notifications for sessions, acknowledgements and heartbeats (SPEC.md §4, §5).
// Both sides import these names.

import type { Limits } from './limits.ts';

/** Server → client, first message on every socket: `[2, "$session", [SessionInfo]]`. */
export const SESSION = '$session';
/** Client → server heartbeat; the server answers `$pong`. Either counts as traffic. */
export const PING = '$ping';
/** Extension notification: the answer to `$ping`. */
export const PONG = '$pong';
/**
 * Either side: `[2, "$ack", [n]]` — I have received and processed n reliable messages
 * (requests and responses) of this session. Absolute, never decreasing.
 */
export const ACK = '$ack';
/** Client → server, right after its first `$ack`: `[2, "$limits", [{…}]]`, its own receive limits. */
export const LIMITS = '$limits';
/** Client → server, after `$limits`: `[2, "$features", [[name, …]]]`, the optional features it uses (SPEC §11). */
export const FEATURES = '$features';
/** The feature `$items`: several items of a stream in one request (SPEC §12). */
export const ITEMS_FEATURE = 'items';
/** The optional features this implementation supports (SPEC §11), in `$session.features` and `$features`. */
export const SUPPORTED_FEATURES: readonly string[] = [ITEMS_FEATURE];

/** The receive limits a side announces (in `$session` for the server, `$limits` for the client). */
export const ANNOUNCED_LIMITS = [
  'maxMessageBytes',
  'maxMessagesPerFrame',
  'maxMethodLength',
  'maxParams',
  'maxDepth',
  'maxElements',
  'maxIncomingPending',
] as const satisfies readonly (keyof Limits)[];

/** The limits each side announces to the other (`$session`, `$limits`). */
export type AnnouncedLimits = Pick<Limits, (typeof ANNOUNCED_LIMITS)[number]>;

/** What the server's `$session` says: the session's id, whether it resumed, and its advice. */
export interface SessionInfo {
  /** Session id; present it as `?sid=` when reconnecting to resume. */
  sid: string;
  /** True when this socket resumed an existing session. */
  resumed: boolean;
  /** How long the server keeps the session after the socket drops, ms (0: no resume). */
  resumeWindowMs: number;
  /** Heartbeat interval the client should keep, ms. */
  heartbeatMs: number;
  /** Largest message the server accepts, bytes (also in `limits`; kept for older clients). */
  maxMessageBytes: number;
  /** The server's receive limits: the client checks what it sends against them. */
  limits?: Partial<AnnouncedLimits>;
  /** The optional features the server supports (SPEC §11); absent: none. */
  features?: string[];
}

/** True when v has the shape of a `$session` payload. */
export function isSessionInfo(v: unknown): v is SessionInfo {
  const s = v as SessionInfo;
  return (
    typeof v === 'object' && v !== null &&
    typeof s.sid === 'string' && typeof s.resumed === 'boolean' &&
    typeof s.resumeWindowMs === 'number' && typeof s.heartbeatMs === 'number' &&
    typeof s.maxMessageBytes === 'number' &&
    (s.limits === undefined || (typeof s.limits === 'object' && s.limits !== null))
  );
}

/** The limits a `$session` or `$limits` announces, taken from a side's receive limits. */
export function announcedLimits(limits: Limits): AnnouncedLimits {
  const out = {} as Record<string, number>;
  for (const k of ANNOUNCED_LIMITS) out[k] = limits[k];
  return out as AnnouncedLimits;
}
