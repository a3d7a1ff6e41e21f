// The TypeScript codec held against vectors.json (case 6.1).

import { same, show } from '../state.ts';
import { untag, vectorFile } from '../values.ts';

/**
 * Where a codec disagrees with vectors.json: `decodeFrame` must read each valid vector
 * (as the param of a notification) to its value and refuse each invalid one; `encode`
 * must write each "both" value as Volley does.
 */
export function codecMismatches(encode: (v: unknown) => Uint8Array, decodeFrame: (b: Uint8Array, max: number) => unknown[]): string[] {
  const wrong: string[] = [];
  for (const v of vectorFile.vectors) {
    const frame = Buffer.concat([Buffer.from('9302a46e6f746591', 'hex'), Buffer.from(v.hex, 'hex')]);
    let decoded: unknown;
    let refused = false;
    try {
      decoded = ((decodeFrame(frame, 1)[0] as unknown[])[2] as unknown[])[0];
      // A BigInt or an object of some class is no value a handler may be handed.
      if (typeof decoded === 'bigint' || (decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded) && !(decoded instanceof Uint8Array) && !(decoded instanceof Date) && Object.getPrototypeOf(decoded) !== Object.prototype))
        refused = true;
    } catch {
      refused = true;
    }
    if (v.kind === 'invalid') {
      if (!refused) wrong.push(`${v.name}: accepted as ${show(decoded)}`);
      continue;
    }
    const want = untag(v.value as never);
    if (refused || !same(decoded, want)) wrong.push(`${v.name}: decoded ${refused ? 'as refused' : show(decoded)}`);
    if (v.kind === 'both') {
      let out: string;
      try {
        out = Buffer.from(encode(want)).toString('hex');
      } catch (err) {
        out = `refused (${(err as Error).message})`;
      }
      if (out !== v.hex) wrong.push(`${v.name}: encoded ${out}, Volley writes ${v.hex}`);
    }
  }
  return wrong;
}

