// The handlers both fuzz targets (a bare RpcPeer and a live server) expose: plain results,
// a call that runs until cancelled, a secret-bearing throw (must never reach the wire),
// a coded error, and a result that can't be encoded.

import { RpcError, type InboundCall } from '../../protocol/index.ts';

/** A handler error message that must never appear in anything sent. */
export const SECRET = 'secret-path-/etc/shadow';

export const fuzzHandlers = {
  echo: (_c: InboundCall, ...args: unknown[]) => args,
  add: (_c: InboundCall, a: unknown, b: unknown) => (a as number) + (b as number),
  // Runs until the caller cancels or the session ends.
  hang: (ctx: InboundCall) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
  boom: () => {
    throw new Error(SECRET);
  },
  coded: (_c: InboundCall, data: unknown) => {
    throw new RpcError('GAME_OVER', 'over', data);
  },
  unencodable: () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    return o;
  },
};
