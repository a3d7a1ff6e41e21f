// Types that turn one plain interface per side into typed proxies and checked handlers.
//
//   interface ServerApi { join(name: string): { room: string } }
//   interface ClientApi { chooseMove(board: Board): Move }
//
// The server implements ServerApi (Handlers<ServerApi, ServerContext>) and calls
// Remote<ClientApi>; the client does the reverse.

/** Any method map: each member a function type. */
export type Api = {
  /** A method of the API. */
  [method: string]: (...args: any[]) => unknown;
};

/** What a remote method returns when called through a proxy: always a promise of the awaited result. */
export type RemoteMethod<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** True when T is `any` (an untyped API: everything goes). */
type IsAny<T> = 0 extends 1 & T ? true : false;

/** Typed proxy to the other side's API. Not thenable. */
export type Remote<T> =
  IsAny<T> extends true ? any : { readonly [K in keyof T]: RemoteMethod<T[K]> };

/** Fire-and-forget form of a remote API: same arguments, no result. */
export type RemoteNotify<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => unknown ? (...args: A) => void : never;
};

/** Implementation of an API: each method gets the call context first, then the arguments. */
export type Handlers<T, Ctx> =
  IsAny<T> extends true
    ? {
        /** Any method, untyped. */
        [method: string]: (ctx: Ctx, ...args: any[]) => unknown;
      }
    : {
        [K in keyof T]: T[K] extends (...args: infer A) => infer R
          ? (ctx: Ctx, ...args: A) => Awaited<R> | Promise<Awaited<R>>
          : never;
      };

/** Method names of T as strings (what `call(method, …)` accepts). */
export type MethodName<T> = IsAny<T> extends true ? string : Extract<keyof T, string>;

/** The argument tuple of method M of API T. */
export type ArgsOf<T, M> = IsAny<T> extends true ? any[] : M extends keyof T ? (T[M] extends (...args: infer A) => unknown ? A : never) : never;
/** What a streaming method yields: `T` of its `AsyncIterable<T>` result (`unknown` otherwise). */
export type ItemOf<R> = R extends AsyncIterable<infer T> ? T : unknown;
/** What method M of API T resolves to (awaited). */
export type ResultOf<T, M> = IsAny<T> extends true ? any : M extends keyof T ? (T[M] extends (...args: any[]) => infer R ? Awaited<R> : never) : never;

/** Options a caller may give one call. */
export interface CallOptions {
  /** Deadline for this call in ms; overrides the default. */
  timeoutMs?: number;
  /** Aborting it cancels the call: the promise rejects CANCELLED and the callee's signal fires. */
  signal?: AbortSignal;
}
