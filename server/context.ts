// The context a server handler receives as its first argument.

import { InboundCall, type Remote } from '../protocol/index.ts';
import type { VolleyServer } from './server.ts';

export class ServerContext<ClientApi = any> extends InboundCall {
  constructor(
    id: number,
    method: string,
    /** The caller's uid, as `authenticate` returned it: the server's word, never the client's. */
    readonly uid: string,
    readonly server: VolleyServer<any, ClientApi>,
  ) {
    super(id, method);
  }

  /** Typed proxy to the calling client, e.g. `await ctx.client.confirm()`. */
  get client(): Remote<ClientApi> {
    return this.server.to(this.uid);
  }
}
