// The context a server handler receives as its first argument.

import { InboundCall, type Remote } from '../protocol/index.ts';
import type { VolleyServer } from './server.ts';

/** What a server handler gets first: the call (`uid`, `signal`, `method`, `id`), the server, and a proxy to the caller. */
export class ServerContext<ClientApi = any> extends InboundCall {
  constructor(
    id: number,
    method: string,
    /** The caller's uid, as `authenticate` returned it: the server's word, never the client's. */
    readonly uid: string,
    /** The server the call arrived on (to call other players, join rooms…). */
    readonly server: VolleyServer<any, ClientApi>,
  ) {
    super(id, method);
  }

  /** Typed proxy to the calling client, e.g. `await ctx.client.confirm()`. */
  get client(): Remote<ClientApi> {
    return this.server.to(this.uid);
  }
}
