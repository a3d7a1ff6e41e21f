// The browser SDK encodes with client/packr.browser.ts instead of msgpackr's Packr (size
// budget, see scripts/build-browser.ts). Whatever it writes, the server decodes with
// msgpackr: so for any value, msgpackr's decoder must give the same result from both
// encoders. Runs in Node, no browser needed. Also checks the build's own guarantees.

import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { Packr as MsgpackrPackr, Unpackr } from 'msgpackr';
import { Packr as SlimPackr } from '../client/packr.browser.ts';
import { buildBrowser, GZIP_BUDGET } from '../scripts/build-browser.ts';

// The options protocol/codec.ts uses on both sides.
const reference = new MsgpackrPackr({ useRecords: false, moreTypes: false });
const slim = new SlimPackr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

type Encoded = { ok: true; value: unknown } | { ok: false };
function decodeWith(pack: (v: unknown) => Uint8Array, v: unknown): Encoded {
  try {
    // A plain Uint8Array copy: msgpackr decodes bin to Buffer when handed a Buffer (which
    // its own encoder returns on Node) and to Uint8Array otherwise.
    return { ok: true, value: unpackr.unpack(new Uint8Array(pack(v))) };
  } catch {
    return { ok: false };
  }
}

function sameAsMsgpackr(v: unknown): boolean {
  // Identical bytes are identical values (and cover Invalid Date, which never deep-equals).
  try {
    if (Buffer.from(reference.pack(v)).equals(slim.pack(v))) return true;
  } catch {
    // one of them refuses: compare below
  }
  const a = decodeWith((x) => reference.pack(x), v);
  const b = decodeWith((x) => slim.pack(x), v);
  return a.ok === b.ok && (!a.ok || isDeepStrictEqual(a.value, (b as { value: unknown }).value));
}

t.test('slim encoder: msgpackr decodes the same value as from msgpackr’s own encoder', (t) => {
  const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  const value = fc.anything({
    withBigInt: false, // int64 range only, below
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: false, // Uint8Array below; msgpackr mangles the others (see packr.browser.ts)
    withSparseArray: true,
    withNullPrototype: false,
    withBoxedValues: false,
    withObjectString: false,
    values: [
      fc.integer(),
      fc.double(),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      int64,
      fc.uint8Array({ maxLength: 300 }),
    ],
  });
  fc.assert(fc.property(value, sameAsMsgpackr), { numRuns: 2000 });
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
  let bad = 0;
  for (const v of edges) if (!sameAsMsgpackr(v)) (bad++, t.fail(`differs from msgpackr for ${String(typeof v === 'symbol' ? 'symbol' : v).slice(0, 40)}`));
  t.equal(bad, 0, `${edges.length} edge values decode identically (or both refuse)`);
  // Where slim knowingly differs: it keeps a typed array's bytes, and writes map32.
  t.same(unpackr.unpack(slim.pack(new Int16Array([1, -2]))), new Uint8Array([1, 0, 0xfe, 0xff]));
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
