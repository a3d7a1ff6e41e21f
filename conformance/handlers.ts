// The kit server's fixed handlers: what every client under test may call. Each one is
// small and observable (counters per key), so a case can prove what ran and how often.

import { RpcError, encode, type Handlers } from '../protocol/index.ts';
import type { ServerContext } from '../server/index.ts';
import type { BadReplyKind, KitServer } from './contract.ts';
import { paramBytes, toHex } from './msgpackWalk.ts';
import { bump, fail, pass, show, type KitState, type Verdict } from './state.ts';
import { runScript } from './scripts.ts';
import { judge } from './verdicts.ts';
import { vectorFile } from './values.ts';
import { isRequest, messagesOf } from './wireLog.ts';

type Ctx = ServerContext;
/** kit.wire takes any number of values of any type: outside what a contract can say (contract.ts). */
type Uncontracted = {
  'kit.wire': (ctx: Ctx, caseId: string) => Verdict;
};

/**
 * Results a client must refuse (SPEC §2), by name, as msgpack hex: `kit.badReply(kind)`
 * has its response rewritten on the wire to carry one (case 6.10).
 */
export const BAD_RESULTS: Record<string, string> = {
  ext: 'd40561', // extension type 5
  unsafe: 'cf0020000000000000', // 2^53 as uint64
  deep: '91'.repeat(40) + '90', // 41 levels, past the floor's maxDepth 32
  key: '81c4016101', // a map with a bin key
  // Case 6.11: past what a recursive decoder survives, and values a date type cannot hold.
  abyss: '91'.repeat(4999) + '90', // 5000 levels: the call fails, the session stays
  'ext-nested': '9181a161d40561', // [{a: extension type 5}]
  'ts-length': 'c703ff000000', // a timestamp (ext -1) of 3 bytes
  'ts-range': 'c70cff000000004000000000000000', // 96-bit timestamp, 2^62 s: beyond any date type
} satisfies Record<BadReplyKind, string>;

/** Integers past 32 bits the server sends (case 6.4); a client must read them back exactly. */
export const NUMBERS = [2 ** 32, 2 ** 40, 1_700_000_000_000, 2 ** 53 - 1, -(2 ** 31) - 1, -(2 ** 40), -(2 ** 53 - 1)];

/** The kit server's handlers, typed by the kit's contract (contract.ts). */
export function kitHandlers(kit: KitState): Handlers<KitServer, Ctx> & Uncontracted {
  return {
    echo: (_: Ctx, x: unknown) => x,
    add: (_: Ctx, a: number, b: number) => a + b,
    nothing: (_: Ctx) => undefined,
    /** Resolves after ms; its abort signal ($cancel, deadline, session end) stops it. */
    sleep: (ctx: Ctx, ms: number, key = '') =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => resolve('slept'), ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          bump(kit.cancelled, key);
          reject(ctx.signal.reason);
        }, { once: true });
      }),
    /** Ignores its signal: its reply comes after the caller's deadline (case 8.3). */
    stubborn: (_: Ctx, ms: number) => new Promise<string>((r) => setTimeout(() => r('late'), ms)),
    fail: (_: Ctx, code: string, message: string = code, data?: unknown) => {
      throw new RpcError(code, message, data);
    },
    internalError: (_: Ctx) => {
      throw new Error('secret detail: /srv/db password=hunter2');
    },
    /** Counts its runs per key before waiting: a call run twice answers 2. */
    count: async (_: Ctx, key: string, delayMs = 0) => {
      const n = bump(kit.runs, key);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return n;
    },
    blob: (_: Ctx, bytes: number) => new Uint8Array(bytes),
    /** A stream (SPEC §12) of 0 … n−1; stopped before its end (the reader's $cancel), it counts kit.cancelled[key]. */
    countTo: async function* (_: Ctx, n: number, key = '') {
      let i = 0;
      try {
        for (; i < n; i++) yield i;
      } finally {
        if (i < n) bump(kit.cancelled, key);
      }
    },
    /** A stream of 0 … n−1 that then fails with `code`. */
    failAfter: async function* (_: Ctx, n: number, code: string) {
      for (let i = 0; i < n; i++) yield i;
      throw new RpcError(code, 'the stream failed');
    },
    /** Reads the caller's stream numbers(n) (a client → server stream) and answers {sum, items}. */
    sumUpload: async (ctx: Ctx, n: number) => {
      let sum = 0;
      let items = 0;
      for await (const x of ctx.server.stream(ctx.uid, 'numbers', [n])) {
        sum += Number(x);
        items++;
      }
      return { sum, items };
    },
    /** Reads the upload xs (SPEC §12: an async iterable param) and answers {sum, items, inOrder}: inOrder when the items were 1 … n. */
    sumStream: async (_: Ctx, xs: AsyncIterable<unknown>) => {
      let sum = 0;
      let items = 0;
      let inOrder = true;
      for await (const x of xs) {
        if (x !== ++items) inOrder = false;
        sum += Number(x);
      }
      return { sum, items, inOrder };
    },
    /** Reads the first n items of the upload xs and stops reading (the caller's iterable must stop): answers them. */
    takeUpload: async (_: Ctx, n: number, xs: AsyncIterable<unknown>) => {
      const got: unknown[] = [];
      if (n > 0)
        for await (const x of xs) {
          got.push(x);
          if (got.length >= n) break;
        }
      return got;
    },
    /** Reads the upload xs until it ends or fails: answers {items, code} (code "none" when it ended). */
    uploadError: async (_: Ctx, xs: AsyncIterable<unknown>) => {
      let items = 0;
      try {
        for await (const _x of xs) items++;
      } catch (err) {
        return { items, code: (err as RpcError).code ?? 'THROWN' };
      }
      return { items, code: 'none' };
    },
    /** Sends the caller `n` notifications `method(payload, i)`, then answers n. */
    notifyMe: (ctx: Ctx, method: string, n = 1, payload: unknown = null) => {
      for (let i = 0; i < n; i++) ctx.server.notify(ctx.uid, method, payload, i);
      return n;
    },
    /** `n` notifications `note` and the reply, written in one tick: one frame (case 5.1). */
    'kit.batch': (ctx: Ctx, n: number) => {
      for (let i = 0; i < n; i++) ctx.server.notify(ctx.uid, 'note', 'batch', i);
      return n;
    },
    'kit.numbers': (_: Ctx) => NUMBERS,
    'kit.undefinedResult': (_: Ctx) => ({ a: undefined, list: [1, undefined], n: null }),
    'kit.notes': (_: Ctx, key: string) => kit.notes.get(key) ?? 0,
    'kit.note': (_: Ctx, key: string) => void bump(kit.notes, key),
    'kit.aborted': (_: Ctx, tag: string) => void bump(kit.aborted, tag),
    'kit.runs': (_: Ctx, key: string) => kit.runs.get(key) ?? 0,
    /** A frame of the kit's own (hex), sent to the caller before this call's reply. */
    'kit.inject': (ctx: Ctx, hex: string, opcode = 2) => kit.proxy.inject(ctx.uid, Buffer.from(hex, 'hex'), opcode),
    'kit.callMe': (ctx: Ctx, caseId: string) => runScript(kit, ctx, caseId),
    /** Answers 'not rewritten', which the proxy turns into a response holding BAD_RESULTS[kind]. */
    'kit.badReply': (ctx: Ctx, kind: string) => {
      const bad = BAD_RESULTS[kind];
      if (bad === undefined) throw new RpcError('INVALID_PARAMS', `kind is one of ${Object.keys(BAD_RESULTS).join(', ')}`);
      kit.proxy.rewriteResponse(ctx.uid, ctx.id, Buffer.concat([Buffer.from([0x94, 0x01]), encode(ctx.id), Buffer.from('c0' + bad, 'hex')]));
      return 'not rewritten';
    },
    'kit.verdict': (ctx: Ctx, caseId: string) => judge(kit, ctx.uid, caseId),
    /** Judges the bytes of this very request's params against the case's accepted encodings. */
    'kit.wire': (ctx: Ctx, caseId: string) => {
      const expected = vectorFile.wire[caseId];
      if (!expected) return fail(`no wire expectations for case ${caseId}`);
      const request = kit.proxy
        .wiresOf(ctx.uid)
        .flatMap((w) => messagesOf(w, 'up'))
        .reverse()
        .find((m) => isRequest(m, 'kit.wire') && m.value![1] === ctx.id);
      if (!request) return fail('the kit did not see this request on the wire');
      const params = paramBytes(request.bytes).slice(1);
      if (params.length !== expected.length) return fail(`expected ${expected.length} values after the case id, got ${params.length}`);
      const wrong = expected
        .map((e, i) => ({ e, got: toHex(params[i]!) }))
        .filter(({ e, got }) => !e.accept.includes(got))
        .map(({ e, got }) => `${show(e.value)}: sent ${got}, want one of ${e.accept.join('|')}`);
      return wrong.length ? fail(wrong.join('; ')) : pass(`${params.length} values encoded as SPEC §2 says`);
    },
  };
}
