// Fuzz of a live Volley server: raw sockets send hostile frames while a well-behaved
// client keeps calling (both ways) and checks every answer. Used by
// test/fuzz-server.test.ts (bounded) and test/fuzz/long.ts (FUZZ_RUNS).
//
// Per case: one raw socket sends 1-6 frames, then a probe call. The server must either
// answer the probe correctly (it kept the connection, so it must still serve it) or close
// the socket; it must never hang, never send a malformed frame, never crash.
// After all cases: every hostile session is gone, nothing is pending either way, the
// good client was never dropped and got only right answers, no timer was left behind.

import fc from 'fast-check';
import WebSocket from 'ws';
import { encode, parseMessage, type Limits } from '../../protocol/index.ts';
import { createServer, type VolleyServer } from '../../server/index.ts';
import { connect, type VolleyClient } from '../../client/index.ts';
import { frame, hostileValue, wellFormedFrame } from './arbitraries.ts';
import { assertUnpolluted, prototypeSnapshot } from './pollution.ts';
import { RawSocket } from './rawSocket.ts';
import { SECRET, fuzzHandlers } from './handlers.ts';

const PROBE_ID = 0xfffffffe;

export interface ServerFuzzConfig {
  /** 0: a dropped socket ends its session at once; > 0: sessions linger that long. */
  resumeWindowMs: number;
  limits?: Partial<Limits>;
}

export interface ServerFuzzSummary {
  cases: number;
  /** How each hostile socket ended: close code → count ("open" = still served at the probe). */
  outcomes: Record<string, number>;
  goodCalls: number;
  failures: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

export class ServerFuzz {
  server!: VolleyServer;
  good!: VolleyClient;
  port = 0;
  readonly summary: ServerFuzzSummary = { cases: 0, outcomes: {}, goodCalls: 0, failures: [] };
  #n = 0;
  #stop = false;
  #loop: Promise<void> | undefined;
  #timersBefore = 0;
  #before = prototypeSnapshot();
  #lingering = new Set<Promise<void>>();

  constructor(readonly config: ServerFuzzConfig) {}

  async start(): Promise<void> {
    this.server = createServer({
      authenticate: (req) => (req.token?.startsWith('u:') ? req.token.slice(2) : null),
      handlers: {
        ...fuzzHandlers,
        // Calls the caller back: a raw socket never answers, so this stays pending until
        // the deadline or the session ends.
        callback: (ctx) => ctx.client.ping(),
      },
      timeoutMs: 300,
      // The good client calls back to back, unpaced: on this machine it passes the default
      // 10 000 calls/s and would be (rightly) RATE_LIMITED in a long run.
      rateLimit: { ratePerSec: 1_000_000, burst: 1_000_000 },
      resumeWindowMs: this.config.resumeWindowMs,
      limits: { maxMessageBytes: 8192, ...this.config.limits },
      onError: () => {},
    });
    this.port = await this.server.listen(0, '127.0.0.1');
    this.good = await connect(`ws://127.0.0.1:${this.port}/`, {
      token: 'u:good',
      WebSocket: WebSocket as never,
      handlers: { ping: (_c: unknown, n: number) => n + 1 },
    });
    this.good.on('close', (info) => this.#fail(`good client lost its socket: ${info.code} ${info.reason}`));
    await sleep(20);
    this.#timersBefore = timeouts();
    this.#loop = this.#goodLoop();
  }

  #fail(msg: string): void {
    if (this.summary.failures.length < 20) this.summary.failures.push(msg);
  }

  /** The well-behaved client: calls both ways, back to back, each answer checked. */
  async #goodLoop(): Promise<void> {
    for (let i = 0; !this.#stop; i++) {
      try {
        const sum = await this.good.server.add(i, 1);
        if (sum !== i + 1) this.#fail(`good add(${i}, 1) = ${String(sum)}`);
        const echoed = (await this.good.server.echo('v', i)) as unknown[];
        if (echoed[0] !== 'v' || echoed[1] !== i) this.#fail(`good echo ${JSON.stringify(echoed)}`);
        const back = await this.server.call('good', 'ping', [i]);
        if (back !== i + 1) this.#fail(`server → good ping(${i}) = ${String(back)}`);
        this.summary.goodCalls += 3;
      } catch (err) {
        this.#fail(`good client call failed: ${String((err as Error).message ?? err)}`);
      }
    }
  }

  /** One case: a hostile socket, its frames, the probe, the way it leaves. */
  property() {
    return fc.asyncProperty(
      fc.array(
        fc.oneof(
          { weight: 6, arbitrary: fc.tuple(wellFormedFrame, fc.constant('binary')) },
          { weight: 4, arbitrary: fc.tuple(frame, fc.constantFrom('binary', 'binary', 'binary', 'binary', 'text', 'tcp')) },
        ),
        { minLength: 1, maxLength: 6 },
      ),
      fc.constantFrom('close', 'destroy', 'linger'),
      fc.option(hostileValue, { nil: undefined }),
      async (frames, ending, sid) => {
        const n = this.#n++;
        this.summary.cases++;
        const query = sid === undefined ? '' : `&sid=${encodeURIComponent(JSON.stringify(sid) ?? '')}`;
        const s = await RawSocket.open(this.port, `/?token=u:f${n}${query}`);
        try {
          for (const [bytes, how] of frames) {
            if (how === 'binary') s.sendBinary(bytes);
            else if (how === 'text') s.sendText(bytes);
            else s.sendRaw(bytes); // not even WebSocket framing
          }
          s.sendBinary(encode([0, PROBE_ID, 'echo', ['probe', n]]));
          // Bytes written outside WebSocket framing may declare a frame longer than what
          // follows: the server then rightly waits for the rest (its idle timeout ends that).
          const garbled = frames.some(([, how]) => how === 'tcp');
          const got = await s.responseOrClose(PROBE_ID, garbled ? 300 : 3000);
          if (!got && garbled) return this.#count('waiting for the rest of a frame');
          if (!got) throw new Error('the server neither answered the probe nor closed the socket within 3 s');
          if (got.response) {
            const [, , err, result] = got.response as [number, number, unknown, unknown[]];
            if (err !== null || result?.[0] !== 'probe' || result[1] !== n)
              throw new Error(`probe answered wrongly: ${JSON.stringify(got.response)}`);
            this.#count('open');
          } else {
            this.#count(String(got.close!.code));
          }
          if (s.badFrames.length) throw new Error('the server sent a frame that is not msgpack');
          for (const m of s.messages) parseMessage(m, { maxMessageBytes: Infinity, maxMessagesPerFrame: Infinity, maxMethodLength: 128, maxParams: 64, maxDepth: 64, maxElements: Infinity, maxIncomingPending: 0, maxOutgoingPending: 0 });
          if (s.messages.some((m) => JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v))?.includes(SECRET)))
            throw new Error('a handler error message leaked to the wire');
          assertUnpolluted(this.#before);
        } finally {
          if (ending === 'close') s.sendClose(1000);
          else if (ending === 'destroy') s.destroy();
          else this.#lingering.add(sleep(50).then(() => s.destroy())); // left open a while: its calls may still be running
        }
      },
    );
  }

  #count(outcome: string): void {
    this.summary.outcomes[outcome] = (this.summary.outcomes[outcome] ?? 0) + 1;
  }

  /** Stop the good client's loop and wait for every hostile session to be gone. */
  async settle(maxMs = 5000): Promise<{ connections: number; pendingIncoming: number; pendingOutgoing: number; timersLeft: number }> {
    this.#stop = true;
    await this.#loop;
    await Promise.all(this.#lingering);
    const end = Date.now() + maxMs + this.config.resumeWindowMs;
    let stats = this.server.stats();
    while (Date.now() < end && (stats.connections > 1 || stats.pendingIncoming > 0 || stats.pendingOutgoing > 0)) {
      await sleep(20);
      stats = this.server.stats();
    }
    await sleep(20);
    return { ...this.server.stats(), timersLeft: timeouts() - this.#timersBefore };
  }

  async close(): Promise<void> {
    this.#stop = true;
    await this.#loop;
    this.good?.close();
    await this.server?.close({ graceMs: 100 });
  }
}
