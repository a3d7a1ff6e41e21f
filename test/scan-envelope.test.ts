// The scan's envelope fast path (protocol/scan.ts) against the generic loop it shortcuts:
// for every input, both must give the same verdict (end, elements, depth, kind, id, the
// refusal's words), throw TruncatedMsgpack in the same cases and, scanning outgoing bytes,
// leave the same bytes behind. setEnvelopeFastPath(false) is the generic loop alone.
// Inputs: a table of envelopes covering every shape the fast path takes or must leave to
// the generic loop, every truncation of each, and seeded random mutations of valid
// requests, responses and notifications, each under several limits (small ones, so that
// every refusal fires) in both directions.

import t from 'tap';
import { Packr } from 'msgpackr';
import { ScanResult, TruncatedMsgpack, scanMessage, setEnvelopeFastPath, type ScanLimits } from '../protocol/scan.ts';
import { DEFAULT_LIMITS } from '../protocol/limits.ts';

const NONE: ScanLimits = { maxElements: Infinity, maxDepth: Infinity, maxParams: Infinity, maxMethodLength: Infinity };
const LIMITS: [string, ScanLimits][] = [
  ['none', NONE],
  ['default', DEFAULT_LIMITS],
  ['tight', { maxElements: 8, maxDepth: 2, maxParams: 2, maxMethodLength: 3 }],
  ['five values', { maxElements: 5, maxDepth: 1, maxParams: 0, maxMethodLength: 0 }],
  ['depth 0', { maxElements: 4, maxDepth: 0, maxParams: 1, maxMethodLength: 1 }],
  ['one param', { maxElements: 6, maxDepth: 1, maxParams: 1, maxMethodLength: 31 }],
];

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([b.length < 32 ? Buffer.from([0xa0 | b.length]) : Buffer.from([0xd9, b.length]), b]).toString('hex');
};
const toHex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** One scan of a copy of `b` (outgoing rewrites it), with or without the fast path. */
function verdict(b: Uint8Array, start: number, limits: ScanLimits, outgoing: boolean, fast: boolean): string {
  const copy = b.slice();
  const r = new ScanResult();
  setEnvelopeFastPath(fast);
  try {
    scanMessage(copy, start, limits, outgoing, r);
  } catch (err) {
    return JSON.stringify({ threw: err instanceof TruncatedMsgpack ? `TruncatedMsgpack: ${err.message}` : String(err), bytes: toHex(copy) });
  } finally {
    setEnvelopeFastPath(true);
  }
  const { end, elements, depth, kind, id, refused } = r;
  return JSON.stringify({ end, elements, depth, kind, id, refused: refused ?? null, bytes: toHex(copy) });
}

/** Compares both paths on `b` under every limit, both directions, at offset 0 and after a prefix. */
class Differ {
  checked = 0;
  mismatches: string[] = [];
  check(label: string, b: Uint8Array): void {
    const prefixed = new Uint8Array(b.length + 3);
    prefixed.set([0xc0, 0x91, 0x01]);
    prefixed.set(b, 3);
    for (const [name, limits] of LIMITS) {
      for (const outgoing of [false, true]) {
        for (const [bytes, start] of [[b, 0], [prefixed, 3]] as const) {
          const fast = verdict(bytes, start, limits, outgoing, true);
          const generic = verdict(bytes, start, limits, outgoing, false);
          this.checked++;
          if (fast !== generic && this.mismatches.length < 10)
            this.mismatches.push(`${label} [${toHex(b)}] limits ${name}, ${outgoing ? 'outgoing' : 'incoming'}, start ${start}:\n  fast    ${fast}\n  generic ${generic}`);
        }
      }
    }
  }
}

const ADD = str('add');
const ID_FORMS = ['00', '01', '7f', 'ccff', 'cc05', 'cdffff', 'cd0100', 'ceffffffff', 'ce00000000', 'cf0000000100000000', 'cf0000000000000005', 'cf7fffffffffffffff',
  'd0ff', 'd1ffff', 'd2ffffffff', 'd3ffffffffffffffff', 'ff', 'e0', 'ca3f800000', 'cb3ff0000000000000', 'cb4270000000000000', 'c0', 'a178', '90', '80', 'c2', 'c1', 'd40100'];
const TYPE_FORMS = ['00', '01', '02', '03', '7f', 'ff', 'cc00', 'cc01', 'cd0000', 'cb0000000000000000', 'c0', 'a0', '90', 'c1'];
const METHOD_FORMS = ['a0', ADD, str('long'), 'bf' + '61'.repeat(31), 'd903616464', 'd900', 'da0003616464', 'db00000003616464', 'c0', '01', 'c403616464', '90', '91a16d', '80', 'c1', 'd40000', 'a5616464'];
const PARAMS_FORMS = ['90', '9101', '920102', '93010203', '9f' + '01'.repeat(15), 'dc00020102', 'dd000000020102', '80', '81a16101', 'c0', '01', 'a0', 'c1', 'de0001a16101', 'c400',
  '9491919101', '9191919191', '9181a16b01', '918190 01', '9181c001', '91d40100', '91d6ff00000001', '91d7ffffffffffffffffff', '91cb4270000000000000', '92cb4270000000000000cb4280000000000000',
  '91cf0000000100000000', '91d3ffffffffffffffff', '91c1', '91c703740161 62', '92c7037401616 2c8000374016162', '91c702741000', '91d90568656c6c6f', '91c4020102', '91ca3f800000',
  '91dc0003010203', '91de0001a16190', '91dd000f4240', '9190', '9180', '92' + '81a161' + '01' + '81a162' + '90'];
const RESULT_FORMS = ['03', 'c0', 'c2', 'a26f6b', '920102', '82a16101a16202', '90', '80', 'de0001a16101', 'dc000101', 'cb4270000000000000', 'c1', 'd40100', 'c703740161 62', 'ff',
  'ceffffffff', 'd903616263', '9f' + '00'.repeat(15), '8f' + '0001'.repeat(15), '9191919101', '8190 01', '81c0 01', '91c1', 'cf0000000100000000', 'dd000f4240', 'ca3f800000'];
const ERROR_FORMS = ['c0', '82a4636f6465a158a76d657373616765a16d', 'a3657272', 'c2', '01', '90', 'c1'];

function table(): [string, Uint8Array][] {
  const rows: [string, string][] = [];
  // Requests: each part varied with the others simple.
  for (const id of ID_FORMS) rows.push([`request id ${id}`, `94 00 ${id} ${ADD} 920102`]);
  for (const type of TYPE_FORMS) rows.push([`type ${type}`, `94 ${type} 05 ${ADD} 920102`], [`type ${type}, 3 long`, `93 ${type} ${ADD} 9101`]);
  for (const m of METHOD_FORMS) rows.push([`request method ${m}`, `94 00 05 ${m} 920102`], [`notification method ${m}`, `93 02 ${m} 9101`]);
  for (const p of PARAMS_FORMS) rows.push([`request params ${p}`, `94 00 05 ${ADD} ${p}`], [`notification params ${p}`, `93 02 ${ADD} ${p}`]);
  // Responses: result and error varied, with ids of each form.
  for (const r of RESULT_FORMS) rows.push([`response result ${r}`, `94 01 05 c0 ${r}`]);
  for (const e of ERROR_FORMS) rows.push([`response error ${e}`, `94 01 05 ${e} c0`]);
  for (const id of ID_FORMS) rows.push([`response id ${id}`, `94 01 ${id} c0 03`]);
  // Envelopes of other lengths and forms.
  for (const env of ['90', '9100', '920005', `9300 05 ${ADD}`, `95 00 05 ${ADD} 90 c0`, `9f00 05 ${ADD} 90` + 'c0'.repeat(11), `dc0004 00 05 ${ADD} 90`,
    `dd00000004 00 05 ${ADD} 90`, `dc0003 02 ${ADD} 90`, `84 00 05 01 ${ADD} 02 90 03 c0`, `de0001 00 90`, 'df0000000100c0', '94 01 05 c0', '93 01 05 c0', '95 01 05 c0 01 02',
    `94 02 ${ADD} 90 c0`, `92 02 ${ADD}`, `94 03 05 ${ADD} 90`, '9205c0', '01', 'c0', 'a16d', '80', 'c1', 'd40100', 'cb4270000000000000', 'cf0000000000000001'])
    rows.push([`envelope ${env}`, env]);
  const out: [string, Uint8Array][] = [];
  // Each alone, and followed by the frame's next message (the end must not run into it).
  for (const [name, h] of rows) out.push([name, hex(h)], [`${name}, then more`, hex(h + 'c0 9101')]);
  return out;
}

t.test('hand-written envelopes: fast path and generic loop agree', (t) => {
  const d = new Differ();
  for (const [name, b] of table()) d.check(name, b);
  t.same(d.mismatches, [], `${d.checked} scans`);
  t.end();
});

t.test('every truncation of each: fast path and generic loop agree', (t) => {
  const d = new Differ();
  for (const [name, b] of table()) for (let k = 0; k < b.length; k++) d.check(`${name}, first ${k} bytes`, b.slice(0, k));
  t.same(d.mismatches, [], `${d.checked} scans`);
  t.end();
});

// A seeded generator (mulberry32): the same inputs every run, a failure reproducible.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

// As codec.ts packs (moreTypes: a plain Uint8Array becomes the typed-array ext the outgoing
// scan rewrites as bin, a BigInt an int64); without codec's checks, so anything goes out.
const packr = new Packr({ useRecords: false, moreTypes: true, encodeUndefinedAsNil: true } as never);
const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x93, 0x94, 0x95, 0x9f, 0xa0, 0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc4, 0xc7, 0xca, 0xcb,
  0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd6, 0xd7, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff];

t.test('seeded random mutations of valid messages: fast path and generic loop agree', (t) => {
  const r = rng(0x5ca1ab1e);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const text = (max: number) => Array.from({ length: int(max + 1) }, () => (r() < 0.05 ? 'é' : String.fromCharCode(97 + int(26)))).join('');
  const value = (depth: number): unknown => {
    switch (int(depth > 3 ? 9 : 12)) {
      case 0: return int(128);
      case 1: return -int(40);
      case 2: return pick([255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, -(2 ** 33), 2 ** 53 - 1, 2 ** 60, -1e20]);
      case 3: return r() * 1000 - 500;
      case 4: return text(40);
      case 5: return pick([true, false, null, undefined]);
      case 6: return pick([new Uint8Array(int(4)), Buffer.from([1, 2]), new Date(int(2e12)), 5n, -(2n ** 60n), new Float32Array(1)]);
      case 7: return text(3);
      case 8: return int(8);
      case 9:
      case 10: return Array.from({ length: int(r() < 0.1 ? 20 : 5) }, () => value(depth + 1));
      default: return Object.fromEntries(Array.from({ length: int(r() < 0.1 ? 18 : 4) }, () => [text(6), value(depth + 1)]));
    }
  };
  const id = () => pick([int(128), int(256), int(65536), int(2 ** 32), 2 ** 32 + int(1000), -1 - int(100)]);
  const message = (): unknown[] => {
    const params = () => Array.from({ length: int(r() < 0.1 ? 18 : 5) }, () => value(1));
    switch (int(7)) {
      case 0:
      case 1:
        return [0, id(), text(r() < 0.1 ? 40 : 8), params()];
      case 2:
      case 3:
        return [1, id(), null, value(0)];
      case 4:
        return [1, id(), { code: 'X', message: text(10) }, null];
      case 5:
        return [2, text(8), params()];
      default:
        return pick([[3, id(), 'm', []], [0, id(), 'm'], [2, 'm', [], 1], [0, id(), int(5), []], value(0) as unknown[]]);
    }
  };
  const mutate = (b: Uint8Array): Uint8Array => {
    const a = Array.from(b);
    for (let m = int(3) + 1; m > 0; m--) {
      // Mostly within the envelope's first bytes, where the fast path reads.
      const at = a.length === 0 ? 0 : r() < 0.7 ? int(Math.min(a.length, 12)) : int(a.length);
      const byte = r() < 0.6 ? pick(INTERESTING) : int(256);
      switch (int(4)) {
        case 0: a[at] = byte; break;
        case 1: a.splice(at, 0, byte); break;
        case 2: a.splice(at, 1); break;
        default: a.length = int(a.length + 1);
      }
    }
    return Uint8Array.from(a);
  };
  const d = new Differ();
  const N = 3000;
  for (let i = 0; i < N; i++) {
    const msg = message();
    const b = Uint8Array.from(packr.pack(msg));
    d.check(`valid #${i}`, b);
    for (let k = 0; k < 2; k++) d.check(`mutant #${i}.${k}`, mutate(b));
  }
  t.same(d.mismatches, [], `${d.checked} scans of ${N} messages and ${2 * N} mutants`);
  t.end();
});
