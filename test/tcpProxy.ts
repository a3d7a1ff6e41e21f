// A loopback TCP proxy for fault tests: sits between WebSocket clients and the server and
// can delay, freeze (stop delivering, like a dead mobile link with no FIN) or cut
// connections (destroy both sides mid-stream).

import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  frozen: boolean;
}

export interface ProxyOptions {
  /** Extra delay per chunk in each direction, ms (random in [0, delayMs]). */
  delayMs?: number;
}

/**
 * Destroy a socket, with a reset (RST) when asked. Not a reset once the socket has ended
 * (its write side shutting down, as when the other side ended first): Node 20's
 * resetAndDestroy() then fails EINVAL and never closes the handle, and the process's exit
 * spins on it forever (cluster-handover.test.ts hung after its last test, 1 run in 3 here).
 */
function drop(s: net.Socket, reset = false): void {
  if (reset && !s.writableEnded) s.resetAndDestroy();
  else s.destroy();
}

export class TcpProxy {
  readonly pairs = new Set<Pair>();
  cuts = 0;
  #server: net.Server;
  #port = 0;

  private constructor(
    /** Where new connections go: change it to move clients to another server (a load balancer's choice). */
    public targetPort: number,
    readonly opts: ProxyOptions,
  ) {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  static async start(targetPort: number, opts: ProxyOptions = {}): Promise<TcpProxy> {
    const p = new TcpProxy(targetPort, opts);
    await new Promise<void>((r) => p.#server.listen(0, '127.0.0.1', r));
    p.#port = (p.#server.address() as net.AddressInfo).port;
    return p;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#port}/`;
  }

  #accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, frozen: false };
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (pair.frozen) return; // swallowed: the other side sees silence
        const delay = this.opts.delayMs ? Math.random() * this.opts.delayMs : 0;
        if (delay === 0) to.write(chunk);
        else {
          // Keep order: pause the source until this chunk is written.
          from.pause();
          setTimeout(() => {
            if (!to.destroyed && !pair.frozen) to.write(chunk);
            from.resume();
          }, delay);
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = () => {
      drop(client);
      drop(upstream);
      this.pairs.delete(pair);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  /** Stop delivering on every current connection (no FIN, no RST: just silence). */
  freeze(): void {
    for (const p of this.pairs) p.frozen = true;
  }

  /**
   * Stop reading from the server on every current connection (a client that reads too
   * slowly): the server's send buffer fills. resumeDownlink() reads on.
   */
  stallDownlink(): void {
    for (const p of this.pairs) p.upstream.pause();
  }

  resumeDownlink(): void {
    for (const p of this.pairs) p.upstream.resume();
  }

  /** Cut every current connection abruptly. */
  cutAll(): void {
    for (const p of [...this.pairs]) this.#cut(p);
  }

  /** Cut one random current connection; returns false if there is none. */
  cutRandom(): boolean {
    const all = [...this.pairs];
    if (all.length === 0) return false;
    this.#cut(all[Math.floor(Math.random() * all.length)]!);
    return true;
  }

  #cut(p: Pair): void {
    this.cuts++;
    drop(p.client, true);
    drop(p.upstream, true);
    this.pairs.delete(p);
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) {
      drop(p.client);
      drop(p.upstream);
    }
    this.pairs.clear();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
