// Prototype pollution sentinel: the own keys of the built-in prototypes a hostile
// "__proto__" / "constructor.prototype" key could reach, and a canary property name.

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype, Error.prototype];

export type Snapshot = string[][];

export function prototypeSnapshot(): Snapshot {
  return PROTOTYPES.map((p) => Reflect.ownKeys(p).map(String).sort());
}

/** Throws if any built-in prototype gained or lost a key, or a fresh object sees `polluted`. */
export function assertUnpolluted(before: Snapshot): void {
  const after = prototypeSnapshot();
  for (let i = 0; i < PROTOTYPES.length; i++) {
    const a = before[i]!.join('\n');
    const b = after[i]!.join('\n');
    if (a !== b) throw new Error(`prototype ${i} changed: ${b.split('\n').filter((k) => !before[i]!.includes(k)).join(', ')}`);
  }
  if (({} as Record<string, unknown>).polluted !== undefined || ([] as unknown as Record<string, unknown>).polluted !== undefined)
    throw new Error('Object.prototype.polluted is set');
}
