// What `authenticate` sees of an upgrade request: copied out of the transport's request
// object before any await (uWebSockets.js' is only valid until its handler returns).

/** Sub-protocol prefix a browser client can use to carry its token (no headers there). */
export const TOKEN_PROTOCOL_PREFIX = 'volley.token.';
/**
 * Sub-protocol the server answers with when the client offered it. A client that offers
 * it also declares that it understands Volley's close codes, so a refused login reaches it
 * as an accepted socket closed with 4401/4409/4503 (browsers can't see HTTP statuses).
 */
export const VOLLEY_PROTOCOL = 'volley';

/** What `authenticate(req)` sees of a WebSocket upgrade request. */
export interface UpgradeRequest {
  /** Path of the request, e.g. "/". */
  url: string;
  /** Parsed query string. */
  query: URLSearchParams;
  /** Request headers, lower-case names. */
  headers: Record<string, string>;
  /**
   * Peer address as text: the socket's, or with `trustProxy` the client's address taken
   * from X-Forwarded-For.
   */
  remoteAddress: string;
  /**
   * The client's token, from (first found) `Authorization: Bearer <t>`, the `token` query
   * parameter, or a `volley.token.<t>` WebSocket sub-protocol.
   */
  token: string | undefined;
}

/** Build the request from what every transport can read. `headers` has lower-case names. */
export function upgradeRequest(
  url: string,
  queryString: string,
  headers: Record<string, string>,
  socketAddress: string,
  trustProxy: number,
): UpgradeRequest {
  const query = new URLSearchParams(queryString);
  return {
    url,
    query,
    headers,
    remoteAddress: trustProxy > 0 ? forwardedFor(headers['x-forwarded-for'], trustProxy) ?? socketAddress : socketAddress,
    token: tokenOf(headers, query),
  };
}

/**
 * The client's address from X-Forwarded-For behind `hops` trusted proxies. Each proxy
 * appends the address it got the request from, so only the last `hops` entries were
 * written by proxies we trust; anything left of those was sent by the client itself and
 * may be forged. The entry our outermost proxy appended is the client as it saw it.
 */
export function forwardedFor(header: string | undefined, hops: number): string | undefined {
  if (!header) return undefined;
  const list = header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) return undefined;
  return list[Math.max(0, list.length - hops)];
}

/** Did the client offer the `volley` sub-protocol? */
export function offersVolley(headers: Record<string, string>): boolean {
  return (headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === VOLLEY_PROTOCOL);
}

function tokenOf(headers: Record<string, string>, query: URLSearchParams): string | undefined {
  const auth = headers['authorization'];
  if (auth && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const q = query.get('token');
  if (q) return q;
  for (const p of (headers['sec-websocket-protocol'] ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith(TOKEN_PROTOCOL_PREFIX)) return t.slice(TOKEN_PROTOCOL_PREFIX.length);
  }
  return undefined;
}
