#!/usr/bin/env node
// volley-loadtest: run a bot script against a Volley server at scale, watch it live, get a
// report (JSON, Markdown, SVG) and an exit status for CI. See loadtest/README.md.

import { writeFileSync } from 'node:fs';
import { parseArgs, USAGE, type Args } from './args.ts';
import { localHub, type Hub } from './hub.ts';
import { LiveView } from './live.ts';
import { toMarkdown } from './markdown.ts';
import { redisHub } from './redis.ts';
import { runLoadTest } from './run.ts';
import { toSvg } from './svg.ts';

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`volley-loadtest: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (line: string) => console.error(`[loadtest] ${line}`);
  let hub: Hub;
  try {
    hub = args.redis
      ? await redisHub({ url: args.redis, runId: args.runId!, generators: args.generators, joinTimeoutMs: args.joinTimeoutMs, log })
      : localHub();
  } catch (err) {
    log((err as Error).message);
    return 2;
  }
  const view = new LiveView(process.stderr);
  log(
    `${args.players} players on ${args.url} (${hub.generators > 1 ? `this generator ${hub.generator + 1}/${hub.generators}, ` : ''}${args.workers} workers), ramp ${args.ramp}/s, ${args.durationMs / 1000} s at full load` +
      (args.rate ? `, open loop ${args.rate}/s of ${args.action ?? 'the only action'}` : ''),
  );
  let result;
  try {
    result = await runLoadTest({
      ...args,
      hub,
      log,
      onTick: args.quiet ? undefined : (p, s, phase) => view.update(p, s, phase),
    });
  } catch (err) {
    log((err as Error).message);
    return 2;
  }
  view.end();
  const r = result.report;
  if (!r) {
    log(`the coordinator says: ${result.code === 0 ? 'passed' : 'failed'}`);
    return result.code;
  }
  const md = toMarkdown(r);
  console.log(md);
  if (args.out) {
    writeFileSync(`${args.out}.json`, `${JSON.stringify(r, null, 2)}\n`);
    writeFileSync(`${args.out}.md`, md);
    writeFileSync(`${args.out}.svg`, toSvg(r));
    log(`report: ${args.out}.json, ${args.out}.md, ${args.out}.svg`);
  }
  if (r.generator.saturated) log(r.generator.note);
  for (const t of r.thresholds) if (!t.ok) log(`threshold failed: ${t.expr} (value ${t.value ?? 'no data'})`);
  log(r.passed ? 'passed' : 'FAILED');
  return result.code;
}

process.exitCode = await main(process.argv.slice(2));
