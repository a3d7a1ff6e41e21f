// The routes token (observe.routesToken): `Authorization: Bearer <token>`, RFC 6750. Both
// the expected token and what a request sent are hashed (SHA-256) and the digests compared
// with timingSafeEqual, so the time taken tells nothing of the length or of the first byte
// that differs.

import { createHash, timingSafeEqual } from 'node:crypto';

export const MIN_TOKEN_LENGTH = 16;
/** Visible ASCII: what a header value carries unchanged (and a browser's fetch accepts). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

const digest = (s: string) => createHash('sha256').update(s).digest();

export class BearerToken {
  readonly #digest: Buffer;

  constructor(token: unknown) {
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || !TOKEN_CHARS.test(token))
      throw new TypeError(`observe.routesToken must be at least ${MIN_TOKEN_LENGTH} visible ASCII characters (no spaces)`);
    this.#digest = digest(token);
  }

  /** Whether an Authorization header value carries the token. */
  admits(authorization: string | string[] | undefined): boolean {
    if (typeof authorization !== 'string' || authorization.length <= 7) return false;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(digest(authorization.slice(7)), this.#digest);
  }
}
