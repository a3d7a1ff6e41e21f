// What `authenticate` sees of an upgrade request, copied out of uWebSockets.js' request
// object before any await (that object is only valid until the handler returns).

import type { HttpRequest, HttpResponse } from './uws.ts';

/** Sub-protocol prefix a browser client can use to carry its token (no headers there). */
export const TOKEN_PROTOCOL_PREFIX = 'volley.token.';
/** Sub-protocol the server answers with when the client offered sub-protocols. */
export const VOLLEY_PROTOCOL = 'volley';

export interface UpgradeRequest {
  /** Path of the request, e.g. "/". */
  url: string;
  /** Parsed query string. */
  query: URLSearchParams;
  /** Request headers, lower-case names. */
  headers: Record<string, string>;
  /** Peer address as text. */
  remoteAddress: string;
  /**
   * The client's token, from (first found) `Authorization: Bearer <t>`, the `token` query
   * parameter, or a `volley.token.<t>` WebSocket sub-protocol.
   */
  token: string | undefined;
}

export function readUpgradeRequest(req: HttpRequest, res: HttpResponse): UpgradeRequest {
  const headers: Record<string, string> = Object.create(null);
  req.forEach((k, v) => {
    headers[k] = v;
  });
  const query = new URLSearchParams(req.getQuery() ?? '');
  return {
    url: req.getUrl(),
    query,
    headers,
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
    token: tokenOf(headers, query),
  };
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
