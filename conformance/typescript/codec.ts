// The TypeScript codec held against vectors.json (case 6.1).

import { same, show } from '../state.ts';
import { untag, vectorFile } from '../values.ts';

/**
 * Where a codec disagrees with vectors.json: `decodeFrame` must read each valid vector
 * (as the param of a notification; a "both" vector's `canonical` form too) to its value
 * and refuse each invalid one; `encode` must write each "both" value as `hex` (what
 * Volley writes) or `canonical` (the smallest form).
 */
export function codecMismatches(encode: (v: unknown) => Uint8Array, decodeFrame: (b: Uint8Array, max: number) => unknown[]): string[] {
  const wrong: string[] = [];
  const read = (hex: string): { decoded?: unknown; refused: boolean } => {
    const frame = Buffer.concat([Buffer.from('9302a46e6f746591', 'hex'), Buffer.from(hex, 'hex')]);
    try {
      const decoded = ((decodeFrame(frame, 1)[0] as unknown[])[2] as unknown[])[0];
      // A BigInt or an object of some class is no value a handler may be handed.
      const refused = typeof decoded === 'bigint' || (decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded) && !(decoded instanceof Uint8Array) && !(decoded instanceof Date) && Object.getPrototypeOf(decoded) !== Object.prototype);
      return { decoded, refused };
    } catch {
      return { refused: true };
    }
  };
  for (const v of vectorFile.vectors) {
    if (v.kind === 'invalid') {
      const { decoded, refused } = read(v.hex);
      if (!refused) wrong.push(`${v.name}: accepted as ${show(decoded)}`);
      continue;
    }
    const want = untag(v.value as never);
    for (const hex of v.canonical ? [v.hex, v.canonical] : [v.hex]) {
      const { decoded, refused } = read(hex);
      if (refused || !same(decoded, want)) wrong.push(`${v.name}: ${hex} decoded ${refused ? 'as refused' : show(decoded)}`);
    }
    if (v.kind === 'both') {
      let out: string;
      try {
        out = Buffer.from(encode(want)).toString('hex');
      } catch (err) {
        out = `refused (${(err as Error).message})`;
      }
      if (out !== v.hex && out !== v.canonical) wrong.push(`${v.name}: encoded ${out}, want ${v.hex}${v.canonical ? ` or ${v.canonical}` : ''}`);
    }
  }
  return wrong;
}

