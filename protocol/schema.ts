// Optional runtime checks of incoming params. A method's params can be checked by any
// Standard Schema (https://standardschema.dev: zod, valibot, arktype implement it) over
// the params tuple, or by a plain guard function. Without one, only the handler's
// declared arity is checked.

import { ErrorCode, RpcError } from './errors.ts';

/** The subset of Standard Schema v1 Volley relies on (no dependency on any library). */
export interface StandardSchemaV1 {
  /** The Standard Schema interface every conforming library exposes. */
  readonly '~standard': {
    /** The Standard Schema version: 1. */
    readonly version: 1;
    /** Check a value: its (possibly transformed) value, or the issues found. */
    readonly validate: (value: unknown) => StandardResult | Promise<StandardResult>;
  };
}
type StandardResult = { readonly value: unknown; readonly issues?: undefined } | { readonly issues: ReadonlyArray<{ readonly message: string }> };

/** A guard returns true (ok), false, or a string saying what is wrong. */
export type ParamsGuard = (params: unknown[]) => boolean | string;

/** A method's params check: a Standard Schema over the params tuple, or a guard. */
export type ParamsSchema = StandardSchemaV1 | ParamsGuard;

/** Throws INVALID_PARAMS if params fail the schema; returns the (possibly transformed) params. */
export async function checkParams(schema: ParamsSchema, params: unknown[]): Promise<unknown[]> {
  if (typeof schema === 'function') {
    const ok = schema(params);
    if (ok === true) return params;
    throw new RpcError(ErrorCode.INVALID_PARAMS, typeof ok === 'string' ? ok : 'invalid params');
  }
  const result = await schema['~standard'].validate(params);
  if (result.issues) {
    const first = result.issues[0]?.message ?? 'invalid params';
    throw new RpcError(ErrorCode.INVALID_PARAMS, first, { issues: result.issues.map((i) => i.message) });
  }
  return Array.isArray(result.value) ? result.value : params;
}
