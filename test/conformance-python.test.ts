// The conformance kit against the Python client (python/): starts the kit server as any
// client's runner would, runs python/kit_runner.py against it and reports each case as an
// assertion; also the client's own unit tests (python/tests). Runs in both npm test passes:
// the kit's servers use VOLLEY_TRANSPORT, so the client meets both server transports.
// Skipped with a message when no python3 here has the `websockets` and `msgpack` packages
// (Debian: apt-get install python3-websockets python3-msgpack).

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const list = (JSON.parse(readFileSync(new URL('../conformance/cases.json', import.meta.url), 'utf8')) as { cases: { id: string; title: string }[] }).cases;

/** The first python3 that has websockets and msgpack (pyenv's may lack Debian's packages). */
const python = [process.env.VOLLEY_PYTHON, 'python3', '/usr/bin/python3']
  .filter((p): p is string => !!p)
  .find((p) => spawnSync(p, ['-c', 'import websockets, msgpack'], { stdio: 'ignore' }).status === 0);
const skip = python ? false : 'no python3 with websockets and msgpack (apt-get install python3-websockets python3-msgpack)';

/** Run a child to its end; its stdout lines, and its exit code. */
function run(cmd: string, args: string[], onLine?: (line: string) => void): Promise<{ lines: string[]; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    const lines: string[] = [];
    let out = '';
    const take = (b: Buffer) => {
      out += b.toString();
      const parts = out.split('\n');
      out = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        onLine?.(l);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take); // unittest reports on stderr
    child.on('close', (code) => {
      if (out) lines.push(out);
      resolve({ lines, code });
    });
  });
}

t.test('the Python client\'s unit tests', { skip }, async (t) => {
  const { lines, code } = await run(python!, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-v']);
  // Names from the verbose lines; failures from unittest's FAIL:/ERROR: headers (a warning
  // printed while a test runs may split its "... ok" line).
  const names = [...new Set(lines.map((l) => /^(test\w+) \(/.exec(l)?.[1]).filter((n): n is string => !!n))];
  const failed = new Set(lines.map((l) => /^(?:FAIL|ERROR): (test\w+)/.exec(l)?.[1]).filter(Boolean));
  const ran = Number(lines.map((l) => /^Ran (\d+) tests? /.exec(l)?.[1]).find((n) => n !== undefined) ?? -1);
  t.ok(names.length >= 10 && names.length === ran, `${names.length} tests reported, unittest ran ${ran}`);
  for (const name of names) t.notOk(failed.has(name), name);
  t.equal(code, 0, 'unittest exit code', { output: lines.slice(-30).join('\n') });
});

t.test('the Python client passes the kit', { skip }, async (t) => {
  t.setTimeout(240_000);
  const server = spawn(process.execPath, ['--import', 'tsx', 'conformance/server.ts', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void server.kill());
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (b: Buffer) => {
      const m = /LISTENING (\d+)/.exec((out += b.toString()));
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`kit server exited (${code})`)));
  });
  const ids = process.env.KIT_CASES ? process.env.KIT_CASES.split(',') : [];
  const { lines, code } = await run(python!, ['python/kit_runner.py', '--url', `http://127.0.0.1:${port}`, ...ids], (l) => t.comment(l));
  const seen = new Map<string, string>();
  for (const l of lines) {
    const m = /^(PASS|FAIL) (\S+) /.exec(l);
    if (m) seen.set(m[2]!, l);
  }
  for (const c of ids.length ? list.filter((c) => ids.includes(c.id)) : list) {
    const line = seen.get(c.id);
    t.ok(line?.startsWith('PASS'), `${c.id} ${c.title}`, { detail: line ?? 'not reported by the runner' });
  }
  t.match(lines.at(-1) ?? '', /^\d+ passed, 0 failed$/, 'the runner\'s summary');
  t.equal(code, 0, 'kit_runner.py exit code');
});
