// Bounded label values. A metric label whose values come from the wire (a method name a
// client made up, an application's error code) would let any client grow the server's
// memory and every scrape without bound, so each label draws from a fixed table and
// everything else is counted under `other`.

import { ErrorCode } from '../../protocol/index.ts';

export const OTHER = 'other';
export const OK = 'OK';

/** Outcome codes: OK, the protocol's error codes, the application codes named in options, other. */
export class CodeTable {
  readonly names: string[];
  readonly #index = new Map<string, number>();
  readonly other: number;

  constructor(extra: readonly string[] = []) {
    this.names = [...new Set([OK, ...Object.values(ErrorCode), ...extra])];
    this.names.forEach((n, i) => this.#index.set(n, i));
    this.other = this.names.length;
    this.names.push(OTHER);
  }

  /** null (a result) is OK, index 0, without a lookup. */
  indexOf(code: string | null): number {
    return code === null ? 0 : (this.#index.get(code) ?? this.other);
  }
}

/**
 * Method names: fixed to the registered handlers for calls served (a client may send any
 * string), or learned up to `cap` for calls the server makes (the server's own code names
 * them; the client's handlers are not known at runtime). Index `cap` is `other`.
 */
export class MethodTable {
  readonly names: string[] = [];
  readonly #index = new Map<string, number>();
  #frozen = false;

  constructor(readonly cap: number, initial: Iterable<string> = [], frozen = false) {
    for (const name of initial) this.indexOf(name);
    this.#frozen = frozen;
  }

  get other(): number {
    return this.cap;
  }

  indexOf(method: string): number {
    const i = this.#index.get(method);
    if (i !== undefined) return i;
    if (this.#frozen || this.names.length >= this.cap || method.charCodeAt(0) === 36 /* $ */) return this.cap;
    this.#index.set(method, this.names.length);
    this.names.push(method);
    return this.names.length - 1;
  }

  nameOf(i: number): string {
    return i === this.cap ? OTHER : this.names[i]!;
  }
}
