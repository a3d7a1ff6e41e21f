// The vectors of vectors.json as JS values (what a Volley peer sends for each).

import { readFileSync } from 'node:fs';

export type Tagged = { t: string; v?: unknown; ms?: number };

export interface VectorFile {
  vectors: { name: string; kind: 'both' | 'decode' | 'invalid'; hex: string; canonical?: string; value?: Tagged; why?: string }[];
  wire: Record<string, { value: Tagged; accept: string[] }[]>;
}

export const vectorFile: VectorFile = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));

export function untag(x: Tagged): unknown {
  switch (x.t) {
    case 'nil': return null;
    case 'bool': case 'int': case 'str': return x.v;
    // "NaN", "Infinity", "-Infinity" and "-0" are strings (JSON has no number for them, or loses the sign).
    case 'float': return typeof x.v === 'string' ? Number(x.v) : x.v;
    case 'bin': return Uint8Array.from(Buffer.from(x.v as string, 'hex'));
    case 'timestamp': return new Date(x.ms!);
    case 'array': return (x.v as Tagged[]).map(untag);
    case 'map': return Object.fromEntries((x.v as [Tagged, Tagged][]).map(([k, v]) => [String(untag(k)), untag(v)]));
    default: throw new Error(`unknown tag ${x.t}`);
  }
}

/** One value per "both" vector (what Volley writes), for echo cases both ways. */
export const echoValues: unknown[] = vectorFile.vectors.filter((v) => v.kind === 'both').map((v) => untag(v.value!));
