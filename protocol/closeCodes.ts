// WebSocket close codes Volley uses, and what a client should do on each.

/** The WebSocket close codes Volley uses, and what a client should do on each. */
export const CloseCode = {
  /** Normal close by either side. Client: do not reconnect. */
  NORMAL: 1000,
  /** Server shutting down or restarting. Client: reconnect with backoff. */
  GOING_AWAY: 1001,
  /**
   * Frame larger than the limit. Reserved: this uWebSockets.js build cuts such a socket
   * without a close frame (both sides see 1006), so clients check sizes before sending.
   */
  MESSAGE_TOO_BIG: 1009,
  /** Same uid logged in on another connection, which replaced this one. Client: do not reconnect. */
  REPLACED: 4000,
  /** duplicateLogin 'reject': this uid was already connected (a race the HTTP 409 check missed). Client: do not reconnect. */
  DUPLICATE_LOGIN: 4001,
  /** The client's heartbeat found the connection dead (set by the client itself). Client: reconnect. */
  HEARTBEAT_TIMEOUT: 4008,
  /** The client read too slowly: its send buffer passed the hard limit. The session is kept. Client: reconnect and resume. */
  OVERLOADED: 4009,
  /**
   * The client kept sending past its rate limit or its held-bytes budget (many refused
   * messages within a second). The session ends. Client: do not reconnect.
   */
  FLOODED: 4029,
  /**
   * Login refused after the socket was accepted (SPEC §1), for clients that offered the
   * `volley` sub-protocol: browsers can't read an HTTP status. 4000 + the HTTP status.
   * authenticate() said no (HTTP 401). Client: do not reconnect; fail with REFUSED.
   */
  UNAUTHORIZED: 4401,
  /** duplicateLogin 'reject' and the uid is connected (HTTP 409). Client: do not reconnect; fail with REFUSED. */
  LOGIN_CONFLICT: 4409,
  /** Shutting down, or too many logins in progress (HTTP 503). Client: retry with backoff. */
  UNAVAILABLE: 4503,
  /** The peer broke the wire format (not msgpack, wrong message shape). Client: do not reconnect blindly. */
  PROTOCOL_ERROR: 4002,
} as const;

/** One of Volley's close codes. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
