// `npx tsx scripts/check-upm.ts [--fix]`: csharp/Volley as Unity imports it from a git URL
// (an immutable package: Unity ignores a file without a .meta there, and cannot write one).
//
// Checks: every file and folder has a .meta whose GUID is the one derived from its path
// (stable across clones and machines, unique), no orphan .meta, the right importer (C#
// scripts, the asmdef, the WebGL .jslib enabled for WebGL only), no build outputs in the
// folder, package.json and the asmdef parse with the fields Unity reads, every .cs file
// opts into nullable annotations (Unity's compiler does not read the .csproj), and the
// sources compile as Unity compiles them: netstandard2.1, C# 9, no Nullable property,
// warnings as errors, with and without UNITY_WEBGL; and csharp/README.md's usage snippet
// compiles on its own. --fix writes the missing .meta files. Prints `upm: N passed, N failed`.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const PACKAGE_DIR = join(root, 'csharp/Volley');

/** Unity skips names starting with '.' and ending with '~' (and never imports them). */
const hidden = (name: string) => name.startsWith('.') || name.endsWith('~');

/** A GUID from the package name and the path inside the package: the same on every clone. */
export function guidFor(rel: string): string {
  return createHash('md5').update(`com.volley.client/${rel.split('\\').join('/')}`).digest('hex');
}

const FOOTER = '  userData: \n  assetBundleName: \n  assetBundleVariant: \n';

/** The .meta Unity would write for this asset (what --fix writes). */
export function metaFor(rel: string, isDir: boolean): string {
  const head = `fileFormatVersion: 2\nguid: ${guidFor(rel)}\n`;
  if (isDir) return head + 'folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n' + FOOTER;
  if (rel.endsWith('.cs'))
    return head + 'MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n  executionOrder: 0\n  icon: {instanceID: 0}\n' + FOOTER;
  if (rel.endsWith('.asmdef')) return head + 'AssemblyDefinitionImporter:\n  externalObjects: {}\n' + FOOTER;
  if (rel.endsWith('.jslib'))
    return head + [
      'PluginImporter:',
      '  externalObjects: {}',
      '  serializedVersion: 2',
      '  iconMap: {}',
      '  executionOrder: {}',
      '  defineConstraints: []',
      '  isPreloaded: 0',
      '  isOverridable: 0',
      '  isExplicitlyReferenced: 0',
      '  validateReferences: 1',
      '  platformData:',
      '  - first:',
      '      Any: ',
      '    second:',
      '      enabled: 0',
      '      settings: {}',
      '  - first:',
      '      Editor: Editor',
      '    second:',
      '      enabled: 0',
      '      settings:',
      '        DefaultValueInitialized: true',
      '  - first:',
      '      WebGL: WebGL',
      '    second:',
      '      enabled: 1',
      '      settings: {}',
      '',
    ].join('\n') + FOOTER;
  if (/\.(json|md|txt)$/.test(rel)) return head + 'TextScriptImporter:\n  externalObjects: {}\n' + FOOTER;
  return head + 'DefaultImporter:\n  externalObjects: {}\n' + FOOTER;
}

/** Files and folders of the package Unity imports (relative paths), and every .meta present. */
export function listPackage(dir: string): { assets: { rel: string; isDir: boolean }[]; metas: string[] } {
  const assets: { rel: string; isDir: boolean }[] = [];
  const metas: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (hidden(name)) continue;
      const p = join(d, name);
      const rel = relative(dir, p);
      if (name.endsWith('.meta')) {
        metas.push(rel);
        continue;
      }
      const isDir = statSync(p).isDirectory();
      assets.push({ rel, isDir });
      if (isDir) walk(p);
    }
  };
  walk(dir);
  return { assets, metas };
}

export interface Report {
  passed: string[];
  failed: string[];
}

/** The file-level checks (no compiler): metas, GUIDs, importers, outputs, manifests, #nullable. */
export function checkFiles(dir: string, fix = false): Report {
  const r: Report = { passed: [], failed: [] };
  const check = (ok: boolean, what: string) => (ok ? r.passed : r.failed).push(what);
  const { assets, metas } = listPackage(dir);
  const expected = new Set(assets.map((a) => a.rel + '.meta'));
  const seen = new Map<string, string>();
  let wrote = 0;
  for (const a of assets) {
    const metaPath = join(dir, a.rel + '.meta');
    if (!existsSync(metaPath) && fix) {
      writeFileSync(metaPath, metaFor(a.rel, a.isDir));
      wrote++;
    }
    if (!existsSync(metaPath)) {
      check(false, `${a.rel}: no .meta (Unity ignores it in an immutable package; run with --fix)`);
      continue;
    }
    const text = readFileSync(metaPath, 'utf8');
    const guid = /^guid: ([0-9a-f]{32})$/m.exec(text)?.[1];
    const want = guidFor(a.rel);
    if (guid !== want) check(false, `${a.rel}.meta: guid ${guid ?? '(none)'} is not the stable ${want}`);
    else if (seen.has(guid)) check(false, `${a.rel}.meta: guid ${guid} also used by ${seen.get(guid)}`);
    else {
      seen.set(guid, a.rel);
      const importer = /^(\w+Importer):/m.exec(text)?.[1];
      const wantImporter = /^(\w+Importer):/m.exec(metaFor(a.rel, a.isDir))![1];
      if (importer !== wantImporter) check(false, `${a.rel}.meta: ${importer ?? 'no importer'}, expected ${wantImporter}`);
      else if (a.isDir && !/^folderAsset: yes$/m.test(text)) check(false, `${a.rel}.meta: a folder without folderAsset: yes`);
      else if (a.rel.endsWith('.jslib') && !/WebGL: WebGL\n\s+second:\n\s+enabled: 1/.test(text)) check(false, `${a.rel}.meta: the plugin is not enabled for WebGL`);
      else check(true, `${a.rel}.meta`);
    }
  }
  for (const m of metas) check(expected.has(m), expected.has(m) ? `${m}: has its asset` : `${m}: orphan .meta (its asset is gone)`);
  for (const a of assets) {
    const name = a.rel.split('/').pop()!;
    if (a.isDir && (name === 'bin' || name === 'obj')) check(false, `${a.rel}/: build output inside the package (csharp/Directory.Build.props puts it in csharp/.build)`);
  }
  // The manifests Unity reads.
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    check(/^com\.[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(pkg.name), `package.json name ${pkg.name} (reverse-domain, lower case)`);
    check(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(pkg.version), `package.json version ${pkg.version} (semver)`);
    check(/^\d{4}\.\d+$/.test(pkg.unity ?? ''), `package.json unity ${pkg.unity} (minimum editor, YYYY.N)`);
    check(typeof pkg.displayName === 'string' && pkg.displayName.length > 0, 'package.json displayName');
  } catch (err) {
    check(false, `package.json: ${(err as Error).message}`);
  }
  const asmdefs = assets.filter((a) => a.rel.endsWith('.asmdef'));
  check(asmdefs.length === 1, `one .asmdef at the package root (${asmdefs.map((a) => a.rel).join(', ')})`);
  for (const a of asmdefs) {
    try {
      const d = JSON.parse(readFileSync(join(dir, a.rel), 'utf8'));
      check(d.name === 'Volley', `${a.rel}: name ${d.name}`);
      for (const k of ['references', 'includePlatforms', 'excludePlatforms'])
        check(Array.isArray(d[k]) && d[k].every((x: unknown) => typeof x === 'string'), `${a.rel}: ${k} is a list of names`);
      check(!(d.excludePlatforms ?? []).includes('WebGL') && (d.includePlatforms ?? []).length === 0, `${a.rel}: every platform, WebGL included`);
      check(d.allowUnsafeCode === false && d.noEngineReferences === true, `${a.rel}: no unsafe code, no engine references`);
    } catch (err) {
      check(false, `${a.rel}: ${(err as Error).message}`);
    }
  }
  // Unity compiles with nullable annotations off unless a file opts in.
  for (const a of assets.filter((x) => x.rel.endsWith('.cs'))) {
    const text = readFileSync(join(dir, a.rel), 'utf8');
    check(/^#nullable enable\b/m.test(text), `${a.rel}: #nullable enable`);
  }
  if (wrote) console.log(`upm: wrote ${wrote} .meta file(s)`);
  return r;
}

export interface Build {
  ok: boolean;
  warnings: number;
  output: string;
}

/** `dotnet build` of a throwaway project around `sources`, as Unity compiles a package. */
export function compileAsUnity(sources: string[], defines: string[] = [], extraReferences: string[] = []): Build {
  const dir = mkdtempSync(join(tmpdir(), 'volley-upm-'));
  try {
    writeFileSync(join(dir, 'UnityLike.csproj'), `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>netstandard2.1</TargetFramework>
    <LangVersion>9.0</LangVersion>
    <!-- No <Nullable>: Unity's compiler has none; files opt in with #nullable enable. -->
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <EnableDefaultCompileItems>false</EnableDefaultCompileItems>
    <DefineConstants>${['UNITY_2021_2_OR_NEWER', ...defines].join(';')}</DefineConstants>
    <AssemblyName>UnityLike</AssemblyName>
  </PropertyGroup>
  <ItemGroup>
${sources.map((s) => `    <Compile Include="${s}" />`).join('\n')}
${extraReferences.map((s) => `    <ProjectReference Include="${s}" />`).join('\n')}
  </ItemGroup>
</Project>
`);
    const b = spawnSync('dotnet', ['build', join(dir, 'UnityLike.csproj'), '-c', 'Release', '-nologo'], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
    });
    const output = (b.stdout ?? '') + (b.stderr ?? '');
    const warnings = Number(/(\d+) Warning\(s\)/.exec(output)?.[1] ?? NaN);
    const diagnostics = [...new Set(output.split('\n').filter((l) => /: (error|warning) [A-Z]+\d+/.test(l)).map((l) => l.replace(/^\s+/, '').replace(/ \[.*\]$/, '')))];
    return { ok: b.status === 0, warnings, output: diagnostics.join('\n') || output.slice(-2000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The C# block after `<!-- compiled by scripts/check-upm.ts -->` in csharp/README.md. */
export function readmeSnippet(): string | undefined {
  const text = readFileSync(join(root, 'csharp/README.md'), 'utf8');
  return /<!-- compiled by scripts\/check-upm\.ts -->\s*```csharp\n([\s\S]*?)```/.exec(text)?.[1];
}

export function checkPackage(dir = PACKAGE_DIR, opts: { fix?: boolean; compile?: boolean } = {}): Report {
  const r = checkFiles(dir, opts.fix);
  const check = (ok: boolean, what: string) => (ok ? r.passed : r.failed).push(what);
  if (opts.compile === false) return r;
  const sources = listPackage(dir).assets.filter((a) => a.rel.endsWith('.cs')).map((a) => join(dir, a.rel));
  for (const defines of [[], ['UNITY_WEBGL']]) {
    const b = compileAsUnity(sources, defines);
    const what = `compiles as Unity does (netstandard2.1, C# 9, no Nullable property, warnings as errors${defines.length ? ', ' + defines.join(' ') : ''})`;
    check(b.ok && b.warnings === 0, b.ok && b.warnings === 0 ? what : `${what}: ${b.warnings} warning(s)\n${b.output}`);
  }
  const snippet = readmeSnippet();
  if (!snippet) check(false, 'csharp/README.md: no snippet marked <!-- compiled by scripts/check-upm.ts -->');
  else {
    const dirS = mkdtempSync(join(tmpdir(), 'volley-snippet-'));
    try {
      writeFileSync(join(dirS, 'Snippet.cs'), '#nullable enable\n' + snippet);
      const b = compileAsUnity([join(dirS, 'Snippet.cs')], [], [join(dir, 'Volley.csproj')]);
      check(b.ok && b.warnings === 0, b.ok && b.warnings === 0 ? 'csharp/README.md usage snippet compiles on its own' : `csharp/README.md usage snippet: ${b.output}`);
    } finally {
      rmSync(dirS, { recursive: true, force: true });
    }
  }
  return r;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const fix = process.argv.includes('--fix');
  const hasDotnet = spawnSync('dotnet', ['--version']).status === 0;
  if (!hasDotnet) console.log('upm: no dotnet SDK; the compile checks count as failures');
  const r = checkPackage(PACKAGE_DIR, { fix, compile: true });
  for (const f of r.failed) console.log(`upm: FAIL ${f}`);
  const files = listPackage(PACKAGE_DIR).assets;
  console.log(`upm: package ${files.filter((a) => !a.isDir).length} files, ${files.filter((a) => a.isDir).length} folders (${files.length} .meta)`);
  console.log(`upm: ${r.passed.length} passed, ${r.failed.length} failed`);
  process.exitCode = r.failed.length ? 1 : 0;
}
