// One live WebSocket: the uid it belongs to and the call engine speaking over it.

import { RpcPeer, type PeerOptions } from '../protocol/index.ts';
import type { ServerContext } from './context.ts';
import type { UwsSocket } from './uws.ts';

/** What uWebSockets.js keeps per socket (its "user data"). */
export interface SocketData {
  uid: string;
  conn?: Connection;
}

export class Connection {
  readonly peer: RpcPeer<ServerContext>;
  /** Set once uWebSockets.js has reported the close; the socket must not be touched after. */
  #closed = false;

  constructor(
    readonly uid: string,
    readonly ws: UwsSocket<SocketData>,
    peerOptions: Omit<PeerOptions<ServerContext>, 'send'>,
  ) {
    this.peer = new RpcPeer<ServerContext>({ ...peerOptions, send: (frame) => this.#send(frame) });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #send(frame: Uint8Array): void {
    if (this.#closed) return;
    // Cork: the flush runs outside uWebSockets.js' own callbacks, where an uncorked
    // send costs a syscall of its own.
    this.ws.cork(() => this.ws.send(frame, true));
  }

  /** Close the socket with a code (the close handler then tears the peer down). */
  end(code: number, reason: string): void {
    if (this.#closed) return;
    this.peer.flush();
    this.ws.end(code, reason);
  }

  /** Called from the uWebSockets.js close handler. */
  markClosed(): void {
    this.#closed = true;
  }
}
