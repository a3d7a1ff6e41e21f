// Dynamic proxies: `remote.chooseMove(board)` becomes `call('chooseMove', [board])`.

/**
 * Build a proxy whose every string member is a function forwarding to `invoke(method, args)`.
 * `then` is undefined so `await proxy` does not hang, and symbol keys (inspection,
 * iteration) are undefined too. Member functions are cached per name.
 */
export function createProxy<T extends object>(invoke: (method: string, args: unknown[]) => unknown): T {
  const cache = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(Object.create(null) as T, {
    get(_target, key) {
      if (typeof key !== 'string' || key === 'then' || key === 'toJSON') return undefined;
      let fn = cache.get(key);
      if (fn === undefined) {
        fn = (...args: unknown[]) => invoke(key, args);
        cache.set(key, fn);
      }
      return fn;
    },
    has: () => false,
    set: () => false,
  });
}

type Invoke = (method: string, args: unknown[]) => unknown;

// Shared by every one-off proxy: `server.to(uid)` builds one per call, so the handler and
// its traps are not rebuilt each time, and no per-proxy cache is made for one use.
const ONE_OFF: ProxyHandler<{ invoke: Invoke }> = {
  get(target, key) {
    if (typeof key !== 'string' || key === 'then' || key === 'toJSON') return undefined;
    const invoke = target.invoke;
    return (...args: unknown[]) => invoke(key, args);
  },
  has: () => false,
  set: () => false,
  ownKeys: () => [],
  getOwnPropertyDescriptor: () => undefined,
};

/** createProxy() for a proxy used once or twice (`server.to(uid).method()`): no member cache. */
export function createOneOffProxy<T extends object>(invoke: Invoke): T {
  return new Proxy({ invoke }, ONE_OFF) as unknown as T;
}
