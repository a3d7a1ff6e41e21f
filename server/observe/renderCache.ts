// One rendering of a route's body (a registry scrape, the monitor's view) answers every
// request for `ttlMs` after it was made, and every request that comes while it is being
// made: however many requests are pipelined or polled back to back, the work is bounded by
// the clock, not by the requests. The reply is kept whole (its body as bytes), so a request
// answered from it allocates nothing and encodes nothing.

import { performance } from 'node:perf_hooks';
import type { HttpReply } from './routes.ts';

const FAILED: HttpReply = { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from('internal error') };

export class RenderCache {
  #reply: HttpReply | undefined;
  #until = 0;
  #pending: Promise<HttpReply> | undefined;

  constructor(
    readonly ttlMs: number,
    readonly render: () => HttpReply | Promise<HttpReply>,
  ) {}

  get(): HttpReply | Promise<HttpReply> {
    if (this.#reply !== undefined && performance.now() < this.#until) return this.#reply;
    return this.#pending ?? this.#refresh();
  }

  #refresh(): HttpReply | Promise<HttpReply> {
    let out: HttpReply | Promise<HttpReply>;
    try {
      out = this.render();
    } catch {
      return this.#keep(FAILED);
    }
    if (!(out instanceof Promise)) return this.#keep(out);
    // A failure is kept for the interval too: a registry that throws is not retried per request.
    return (this.#pending = out.then(
      (reply) => this.#keep(reply),
      () => this.#keep(FAILED),
    ));
  }

  #keep(reply: HttpReply): HttpReply {
    this.#reply = reply;
    // Counted from when the rendering ended: a slow one cannot run back to back.
    this.#until = performance.now() + this.ttlMs;
    this.#pending = undefined;
    return reply;
  }
}
