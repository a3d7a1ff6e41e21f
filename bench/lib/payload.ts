// The payloads the scenarios send. Deterministic, so every system carries the same bytes.

/** A game-state-like object whose msgpack encoding is about `bytes` long (JSON a bit more). */
export function objectPayload(bytes: number): Record<string, unknown> {
  const items: { id: number; kind: string; qty: number; pos: [number, number] }[] = [];
  const obj = { player: 'player-000042', hp: 87, level: 12, pos: { x: 103.5, y: -20.25, z: 7 }, items };
  // Each item is ~33 bytes of msgpack; the head ~60.
  const n = Math.max(0, Math.round((bytes - 60) / 33));
  for (let i = 0; i < n; i++) items.push({ id: i, kind: `item${i % 10}`, qty: i % 7, pos: [i, i * 2] });
  return obj;
}

/** Monotonic microseconds, comparable across processes (CLOCK_MONOTONIC on Linux). */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
