// The conformance kit against Volley's own TypeScript client: starts the kit server
// (conformance/server.ts) in a child process, as any client's runner would, and runs
// every case of conformance/cases.json through client/client.ts over `ws`.

import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cases, runAll } from '../conformance/typescript/cases.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const list = (JSON.parse(readFileSync(new URL('../conformance/cases.json', import.meta.url), 'utf8')) as { cases: { id: string; title: string; path: string }[] }).cases;

t.test('every case of cases.json has an implementation, and only those', async (t) => {
  const ids = list.map((c) => c.id);
  t.same(ids.filter((id) => !cases[id]), [], 'cases without an implementation');
  t.same(Object.keys(cases).filter((id) => !ids.includes(id)), [], 'implementations of no listed case');
  t.equal(new Set(ids).size, ids.length, 'case ids are unique');
});

t.test('vectors.json is what conformance/vectors.ts writes', async (t) => {
  const before = readFileSync(new URL('../conformance/vectors.json', import.meta.url), 'utf8');
  const child = spawn(process.execPath, ['--import', 'tsx', 'conformance/vectors.ts'], { cwd: root, stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  t.equal(readFileSync(new URL('../conformance/vectors.json', import.meta.url), 'utf8'), before);
});

t.test('the TypeScript client passes the kit', async (t) => {
  // ~60 cases, each on fresh sockets, some waiting out heartbeats and resume windows.
  t.setTimeout(240_000);
  const server = spawn(process.execPath, ['--import', 'tsx', 'conformance/server.ts', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void server.kill());
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`kit server exited (${code})`)));
  });
  const only = process.env.KIT_CASES ? new Set(process.env.KIT_CASES.split(',')) : undefined;
  const results = await runAll({ base: `http://127.0.0.1:${port}` }, list, (line) => t.comment(line), only);
  for (const r of results) t.ok(r.ok, `${r.id} ${r.title}`, { detail: r.detail });
});
