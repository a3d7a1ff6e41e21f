// scripts/check-upm.ts, the CI check that csharp/Volley imports cleanly as a Unity package
// from a git URL: it passes on the package as committed, and each defect it exists for makes
// it fail with a message naming the file (a copy of the package is broken one way at a time).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFiles, compileAsUnity, guidFor, listPackage, PACKAGE_DIR } from '../scripts/check-upm.ts';

t.setTimeout(300_000);
const hasDotnet = spawnSync('dotnet', ['--version']).status === 0;

function copy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'volley-upm-test-'));
  cpSync(PACKAGE_DIR, dir, { recursive: true, filter: (src) => !/\/(bin|obj)(\/|$)/.test(src.slice(PACKAGE_DIR.length)) });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the committed package passes, with one stable, unique GUID per file and folder', async (t) => {
  const r = checkFiles(PACKAGE_DIR);
  t.same(r.failed, [], 'no failure');
  const { assets, metas } = listPackage(PACKAGE_DIR);
  t.equal(metas.length, assets.length, 'as many .meta as files and folders');
  const guids = assets.map((a) => /^guid: (\w+)$/m.exec(readFileSync(join(PACKAGE_DIR, a.rel + '.meta'), 'utf8'))![1]);
  t.equal(new Set(guids).size, guids.length, 'unique');
  t.same(guids, assets.map((a) => guidFor(a.rel)), 'derived from the path: the same on every clone');
  t.equal(guidFor('Calls.cs'), guidFor('Calls.cs'));
  t.not(guidFor('Calls.cs'), guidFor('Wire/Calls.cs'));
});

t.test('each defect fails the check, naming the file', async (t) => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['missing .meta', (d) => unlinkSync(join(d, 'Codes.cs.meta')), /Codes\.cs: no \.meta/],
    ['orphan .meta', (d) => writeFileSync(join(d, 'Gone.cs.meta'), readFileSync(join(d, 'Codes.cs.meta'))), /Gone\.cs\.meta: orphan/],
    ['copied .meta (duplicate guid)', (d) => writeFileSync(join(d, 'Codes.cs.meta'), readFileSync(join(d, 'Calls.cs.meta'))), /Codes\.cs\.meta: guid \w+ is not the stable/],
    ['new file without .meta', (d) => writeFileSync(join(d, 'Extra.cs'), '#nullable enable\nnamespace Volley { }\n'), /Extra\.cs: no \.meta/],
    ['build output in the package', (d) => mkdirSync(join(d, 'obj')), /obj\/: build output inside the package/],
    ['asmdef that does not parse', (d) => writeFileSync(join(d, 'Volley.asmdef'), '{ "name": "Volley", '), /Volley\.asmdef: .*JSON/],
    ['package name Unity refuses', (d) => {
      const p = join(d, 'package.json');
      writeFileSync(p, readFileSync(p, 'utf8').replace('"com.volley.client"', '"Volley"'));
    }, /package\.json name Volley/],
    ['file without #nullable enable', (d) => {
      const p = join(d, 'Codes.cs');
      writeFileSync(p, readFileSync(p, 'utf8').replace('#nullable enable\n', ''));
    }, /Codes\.cs: #nullable enable/],
    ['folder .meta for a file', (d) => writeFileSync(join(d, 'Codes.cs.meta'), `fileFormatVersion: 2\nguid: ${guidFor('Codes.cs')}\nfolderAsset: yes\nDefaultImporter:\n`), /Codes\.cs\.meta: DefaultImporter, expected MonoImporter/],
  ];
  for (const [what, breakIt, message] of cases) {
    const dir = copy();
    breakIt(dir);
    const r = checkFiles(dir);
    t.ok(r.failed.length > 0, `${what}: fails`);
    t.match(r.failed.join('\n'), message, `${what}: says so`);
  }
  const dir = copy();
  unlinkSync(join(dir, 'Codes.cs.meta'));
  t.same(checkFiles(dir, true).failed, [], '--fix writes the missing .meta');
  t.equal(readFileSync(join(dir, 'Codes.cs.meta'), 'utf8'), readFileSync(join(PACKAGE_DIR, 'Codes.cs.meta'), 'utf8'), 'the same bytes as committed');
});

t.test("Unity's compiler settings: a nullable annotation outside #nullable fails (CS8632)", { skip: hasDotnet ? false : 'no dotnet SDK' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'volley-upm-cs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'A.cs'), 'namespace X { public static class A { public static string? Name; } }\n');
  const bad = compileAsUnity([join(dir, 'A.cs')]);
  t.notOk(bad.ok, 'without #nullable enable: fails');
  t.match(bad.output, /CS8632/);
  writeFileSync(join(dir, 'A.cs'), '#nullable enable\nnamespace X { public static class A { public static string? Name; } }\n');
  const good = compileAsUnity([join(dir, 'A.cs')]);
  t.ok(good.ok, 'with it: builds');
  t.equal(good.warnings, 0);
});
