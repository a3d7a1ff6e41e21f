// The browser SDK encodes with client/packr.browser.ts instead of msgpackr's Packr (size
// budget, see scripts/build-browser.ts); protocol/codec.ts runs the same outgoing scan
// over either encoder's bytes. So for any value, the wire must carry the same thing from
// both builds: the same bytes, or bytes msgpackr decodes to the same value, or a refusal
// with the same reason. Runs in Node, no browser needed. Also checks the build's own
// guarantees.

import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { Unpackr } from 'msgpackr';
import { Packr as SlimPackr } from '../client/packr.browser.ts';
import { encode } from '../protocol/codec.ts';
import { ScanResult, scanMessage } from '../protocol/scan.ts';
import { buildBrowser, GZIP_BUDGET } from '../scripts/build-browser.ts';

const NONE = { maxElements: Infinity, maxDepth: Infinity, maxParams: Infinity, maxMethodLength: Infinity };
const slim = new SlimPackr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, int64AsType: 'number' } as never);

/** What Node puts on the wire: msgpackr + the outgoing scan (protocol/codec.ts). */
const viaNode = (v: unknown) => encode(v, NONE);
/** What the browser build puts on the wire: the slim Packr + the same scan. */
function viaSlim(v: unknown): Uint8Array {
  const b = slim.pack(v);
  const r = new ScanResult();
  scanMessage(b, 0, NONE, true, r);
  if (r.refused !== undefined) throw new TypeError(r.refused);
  return b.subarray(0, r.end);
}

type Encoded = { ok: true; value: unknown } | { ok: false; reason: string };
function decodeWith(pack: (v: unknown) => Uint8Array, v: unknown): Encoded {
  try {
    // A plain Uint8Array copy: msgpackr decodes bin to Buffer when handed a Buffer (which
    // its own encoder returns on Node) and to Uint8Array otherwise.
    return { ok: true, value: unpackr.unpack(new Uint8Array(pack(v))) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** `sameReason`: also the same refusal text (a value holding two refused things may name either). */
function sameAsMsgpackr(v: unknown, sameReason = false): boolean {
  // Identical bytes are identical values (and cover Invalid Date, which never deep-equals).
  try {
    if (Buffer.from(viaNode(v)).equals(viaSlim(v))) return true;
  } catch {
    // one of them refuses: compare below
  }
  const a = decodeWith(viaNode, v);
  const b = decodeWith(viaSlim, v);
  if (!a.ok || !b.ok) return !a.ok && !b.ok && (!sameReason || a.reason === b.reason);
  return isDeepStrictEqual(a.value, b.value);
}

t.test('slim encoder: msgpackr decodes the same value as from msgpackr’s own encoder', (t) => {
  const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  const value = fc.anything({
    withBigInt: true, // refused by both
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: true, // refused by both, but Uint8Array
    withSparseArray: true,
    withNullPrototype: false,
    withBoxedValues: false,
    withObjectString: false,
    values: [
      fc.integer(),
      fc.double(),
      fc.integer({ min: -(2 ** 53) - 3, max: 2 ** 53 + 3 }), // int64/uint64 on the wire when safe
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      int64,
      fc.uint8Array({ maxLength: 300 }),
    ],
  });
  fc.assert(fc.property(value, (v) => sameAsMsgpackr(v)), { numRuns: 2000 });
  t.pass('2000 random values decode identically');
  t.end();
});

t.test('slim encoder: edges of every size class', (t) => {
  const edges: unknown[] = [];
  for (const n of [0, 31, 32, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -0, 0.5, NaN, Infinity, -Infinity])
    edges.push(n);
  for (const len of [0, 15, 16, 31, 32, 255, 256, 65535, 65536]) {
    edges.push('x'.repeat(len), 'é'.repeat(len), new Uint8Array(len).fill(7), new Array(len).fill(1));
    if (len < 65536) edges.push(Object.fromEntries(Array.from({ length: len }, (_, i) => [`k${i}`, i])));
  }
  edges.push(2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, new Date(0), new Date(-1), new Date(1700000000123), new Date(8.64e15));
  edges.push(new Map<unknown, unknown>([[1, 'a'], ['b', [2]]]), new Set([1, 'two']), /re/gi, new Error('boom'), new ArrayBuffer(3));
  edges.push({ fn() {} }, [undefined, null], Symbol('no'), new Date(NaN), 2n ** 64n);
  edges.push(2 ** 40, -(2 ** 40), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53 + 2, new Int16Array(1), new Uint8ClampedArray(1), new DataView(new ArrayBuffer(1)), Buffer.from([1]));
  edges.push(Object.assign(new Error('a'), { cause: new Error('b') }), 5n);
  let bad = 0;
  for (const v of edges) if (!sameAsMsgpackr(v, true)) (bad++, t.fail(`differs from msgpackr for ${String(typeof v === 'symbol' ? 'symbol' : v).slice(0, 40)}`));
  t.equal(bad, 0, `${edges.length} edge values: same wire bytes or value (or the same refusal)`);
  // The rules themselves, in the browser build's bytes
  t.same(viaSlim([undefined]), Uint8Array.of(0x92 - 1, 0xc0), 'undefined is nil');
  t.same(Buffer.from(viaSlim(2 ** 40)).toString('hex'), 'cf0000010000000000', 'a safe integer past 32 bits is uint64');
  t.same(Buffer.from(viaSlim(-(2 ** 40))).toString('hex'), 'd3ffffff0000000000', '…and int64 below −2^31');
  for (const [v, reason] of [[5n, 'a BigInt cannot be sent'], [new Set(), 'a Set cannot be sent'], [new Map(), 'a Map cannot be sent: use a plain object'], [new Error('x'), 'an Error cannot be sent'], [/x/, 'a RegExp cannot be sent'], [new Int32Array(1), 'a typed array other than Uint8Array cannot be sent'], [() => 1, 'a function cannot be sent'], [new Date(NaN), 'an invalid Date cannot be sent']] as const)
    t.throws(() => viaSlim([v]), { message: reason }, reason);
  // Where slim knowingly differs: map32.
  t.equal(Object.keys(unpackr.unpack(slim.pack(Object.fromEntries(Array.from({ length: 65536 }, (_, i) => [`k${i}`, i]))))).length, 65536);
  // A typical Volley request, byte for byte where msgpackr uses the same forms.
  const req = [0, 7, 'chooseMove', [{ matchId: 1, round: 2, deadlineMs: 5000 }]];
  t.same(unpackr.unpack(slim.pack(req)), req);
  t.end();
});

t.test('slim encoder: results may be kept (each pack is a fresh copy)', (t) => {
  const a = slim.pack([1, 'a']);
  const b = slim.pack([2, 'b']);
  t.same(unpackr.unpack(a), [1, 'a']);
  t.same(unpackr.unpack(b), [2, 'b']);
  t.end();
});

t.test('browser build: under budget, msgpackr unpack only, no Node inputs', async (t) => {
  const out = await buildBrowser({ write: false, quiet: true });
  t.ok(out.gzipBytes <= GZIP_BUDGET, `bundle is ${out.gzipBytes} B gzip (budget ${GZIP_BUDGET})`);
  t.ok(out.inputs.includes('node_modules/msgpackr/unpack.js'), 'decodes with msgpackr/unpack');
  t.notOk(out.inputs.some((p) => /msgpackr\/(pack|index|node-index)\.js$/.test(p)), 'no other msgpackr entry');
  t.ok(out.inputs.includes('client/packr.browser.ts'), 'encodes with the slim Packr');
  t.notMatch(new TextDecoder().decode(out.bundle), /\brequire\(|from"node:/, 'no require() or node: import left');
  t.match(new TextDecoder().decode(out.app), /from\s*"\/volley\.js"/, 'the demo page imports the SDK from /volley.js');
});
