// The Volley under test, for bench processes that load it themselves (the cluster benches):
// another checkout's compiled dist/ (BENCH_VOLLEY_FROM), this checkout's dist/ by default,
// or its sources with BENCH_VOLLEY_SRC=1 (servers/volley.ts says why dist/ by default).

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.join(import.meta.dirname, '../..');

/** `file`: the module's path under the checkout without extension, e.g. `server/cluster/connection`. */
export function volleyModule<T>(file: string): Promise<T> {
  const from = process.env.BENCH_VOLLEY_FROM;
  const url = from
    ? pathToFileURL(path.join(from, `dist/${file}.js`)).href
    : process.env.BENCH_VOLLEY_SRC === '1'
      ? pathToFileURL(path.join(root, `${file}.ts`)).href
      : pathToFileURL(path.join(root, `dist/${file}.js`)).href;
  return import(url) as Promise<T>;
}
