#!/usr/bin/env node
// volley-codegen: typed C# for a Volley contract written in TypeScript.
//
//   volley-codegen csharp <contract.ts> -o <Contract.g.cs> [--namespace N] [--name Prefix]
//                  [--server ServerInterface] [--client ClientInterface] [--check]
//
// Reads the contract with the TypeScript compiler (an optional peer dependency: the game's
// own `typescript`), writes one C# file. --check writes nothing and exits 1 when the file
// differs from what would be generated (for CI).

import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = 'usage: volley-codegen csharp <contract.ts> -o <out.cs> [--namespace N] [--name Prefix] [--server Interface] [--client Interface] [--check]';

export async function main(argv: string[]): Promise<number> {
  const [lang, file, ...rest] = argv;
  if (lang !== 'csharp' || !file) {
    console.error(USAGE);
    return 2;
  }
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const key = a === '-o' ? 'out' : a.replace(/^--/, '');
    if (!['out', 'namespace', 'name', 'server', 'client', 'check'].includes(key)) {
      console.error(`volley-codegen: unknown option ${a}\n${USAGE}`);
      return 2;
    }
    if (key === 'check') flags.check = true;
    else {
      const v = rest[++i];
      if (v === undefined) {
        console.error(`volley-codegen: ${a} needs a value`);
        return 2;
      }
      flags[key] = v;
    }
  }
  let model: typeof import('./model.ts');
  let emit: typeof import('./csharp.ts');
  try {
    model = await import('./model.ts');
    emit = await import('./csharp.ts');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes("'typescript'")) {
      console.error('volley-codegen: needs the typescript package (npm install --save-dev typescript)');
      return 2;
    }
    throw err;
  }
  let text: string;
  try {
    const contract = model.readContract(file, { server: str(flags.server), client: str(flags.client) });
    text = emit.emitCSharp(contract, { namespace: str(flags.namespace) ?? 'Game', name: str(flags.name), source: basename(file) });
  } catch (err) {
    console.error(`volley-codegen: ${(err as Error).message}`);
    return 1;
  }
  const out = str(flags.out);
  if (!out) {
    process.stdout.write(text);
    return 0;
  }
  if (flags.check) {
    let have = '';
    try {
      have = readFileSync(out, 'utf8');
    } catch {}
    if (have !== text) {
      console.error(`volley-codegen: ${out} is not what ${file} generates; run without --check to update it`);
      return 1;
    }
    return 0;
  }
  writeFileSync(out, text);
  console.error(`volley-codegen: wrote ${out} (${text.length} bytes)`);
  return 0;
}

function str(v: string | true | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
