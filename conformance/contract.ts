// The kit's contract: what a runner's client may call on the kit server (KitServer, README
// "The kit server's methods") and what the kit server calls on that client (KitClient, README
// "Client handlers"), one interface per side as a game's contract is. The kit's handlers
// (handlers.ts) are typed by it, and volley-codegen writes the C# runner's typed layer from it:
//
//   npx tsx codegen/cli.ts csharp conformance/contract.ts -o csharp/Volley.Tests/Kit.g.cs --namespace Volley.Tests --name KitApi
//
// (test/codegen.test.ts fails when Kit.g.cs is not what this file generates.) Two methods are
// not here because a contract has no form for them: kit.wire(caseId, ...values) on the server
// and note(...args) on the client take any number of values of any type (rest parameters);
// runners call and register them by name.

/** A whole number (64-bit in typed clients). */
export type Int = number;

/** The kit's judgment of a case (kit.callMe, kit.verdict, kit.wire). */
export interface Verdict {
  ok: boolean;
  detail: string;
}

/** What kit.undefinedResult answers: {a: undefined, list: [1, undefined], n: null} as the server encodes it. */
export interface UndefinedResult {
  a?: Int;
  list: (Int | undefined)[];
  n: Int | null;
}

/** Results a client must refuse (SPEC §2) that kit.badReply(kind) puts on the wire (cases 6.10–6.12). */
export type BadReplyKind = 'ext' | 'unsafe' | 'deep' | 'key' | 'abyss' | 'ext-nested' | 'ts-length' | 'ts-range';

/** What a runner's client may call (or notify) on the kit server. */
export interface KitServer {
  /** Answers x. */
  echo(x: unknown): unknown;
  add(a: number, b: number): number;
  /** Answers nil. */
  nothing(): void;
  /** Answers 'slept' after ms; its abort signal stops it and counts cancelled[key]. */
  sleep(ms: Int, key?: string): string;
  /** Answers 'late' after ms, ignoring cancellation. */
  stubborn(ms: Int): string;
  /** Fails with that code, message and data. */
  fail(code: string, message?: string, data?: unknown): never;
  /** Throws an uncoded error: the caller sees INTERNAL. */
  internalError(): never;
  /** Counts runs[key] before waiting delayMs and answers it: a call run twice answers 2. */
  count(key: string, delayMs?: Int): Int;
  /** A bin of that many zero bytes. */
  blob(bytes: Int): Uint8Array;
  /** A stream of 0 … n−1; stopped before its end, it counts cancelled[key]. */
  countTo(n: Int, key?: string): AsyncIterable<Int>;
  /** A stream of 0 … n−1 that then fails with code. */
  failAfter(n: Int, code: string): AsyncIterable<Int>;
  /** Reads the caller's stream numbers(n) and answers its sum and item count. */
  sumUpload(n: Int): { sum: number; items: Int };
  /** Reads the upload xs (SPEC §12: an async iterable param) and answers its sum, item count, and whether the items were 1 … n. */
  sumStream(xs: AsyncIterable<Int>): { sum: number; items: Int; inOrder: boolean };
  /** Reads the first n items of the upload xs, then stops reading (the caller's iterable must stop), and answers them. */
  takeUpload(n: Int, xs: AsyncIterable<Int>): unknown[];
  /** Reads the upload xs until it ends or fails: how many items, and the failure's code ("none" when it ended). */
  uploadError(xs: AsyncIterable<Int>): { items: Int; code: string };
  /** Sends the caller n notifications method(payload, i), then answers n. */
  notifyMe(method: string, n?: Int, payload?: unknown): Int;
  /** n notifications note('batch', i) and the answer, in one frame. */
  'kit.batch'(n: Int): Int;
  /** Integers beyond 32 bits. */
  'kit.numbers'(): Int[];
  /** Absent values, as the server encodes them (case 6.6). */
  'kit.undefinedResult'(): UndefinedResult;
  /** Notification: counts notes[key]. */
  'kit.note'(key: string): void;
  /** notes[key]. */
  'kit.notes'(key: string): Int;
  /** Notification a client's slow handler sends when its call is cancelled. */
  'kit.aborted'(tag: string): void;
  /** runs[key]. */
  'kit.runs'(key: string): Int;
  /** Sends the caller a WebSocket frame of the kit's own (hex), before this call's answer; answers to how many of its sockets. */
  'kit.inject'(hex: string, opcode?: Int): Int;
  /** Runs the case's script of server → client calls. */
  'kit.callMe'(caseId: string): Verdict;
  /** Answers 'not rewritten', which the kit rewrites on the wire into a result SPEC §2 refuses. */
  'kit.badReply'(kind: BadReplyKind): string;
  /** The case's verdict on the caller's recorded frames. */
  'kit.verdict'(caseId: string): Verdict;
}

/** What the kit server calls on a runner's client. */
export interface KitClient {
  /** Answers x. */
  echo(x: unknown): unknown;
  /** Fewer than two numbers: INVALID_PARAMS. */
  add(a: number, b: number): number;
  /** Answers 'done' after ms; cancelled, it notifies kit.aborted(tag) and sends no answer. */
  slow(ms: Int, tag: string): string;
  /** Fails with that code, message and data. */
  fail(code: string, message: string, data?: unknown): never;
  /** Throws an uncoded error: the server sees INTERNAL, no detail. */
  boom(): never;
  /** Counts the client's own runs[key], waits delayMs, answers the count. */
  count(key: string, delayMs?: Int): Int;
  /** A stream of 1 … n (case 12.4). */
  numbers(n: Int): AsyncIterable<Int>;
  /** Reads the server's upload xs and answers its items; an upload that fails fails it with that code (case 12.10). */
  collect(xs: AsyncIterable<Int>): Int[];
}
