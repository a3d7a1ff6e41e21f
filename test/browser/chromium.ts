// Real-browser fixture: Debian's chromium driven by playwright-core (no downloaded
// browser). Each test file launches one browser with a fresh profile and closes it in
// teardown. Without /usr/bin/chromium the browser tests skip with skipReason().

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser (VOLLEY_CHROMIUM overrides it). */
export const CHROMIUM = process.env.VOLLEY_CHROMIUM || '/usr/bin/chromium';

/** Headless, no sandbox (we run as root in CI), and nothing that phones home. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Why browser tests can't run here, or false when they can. Pass as tap's `skip`. */
export function skipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  return `browser tests skipped: no chromium at ${CHROMIUM} (install it: apt-get install -y --no-install-recommends chromium)`;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Launch chromium with a fresh --user-data-dir; closed and removed at t's teardown. */
export async function launchBrowser(t: Teardown): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'volley-chromium-'));
  // launchPersistentContext is how playwright takes a user data dir (it refuses the flag).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 900, height: 720 },
    timeout: 20_000,
  });
  t.teardown(async () => {
    await context.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
  });
  return context;
}

/**
 * Open url in a new page. Page errors and console errors are collected in `problems`
 * so a test can assert the page ran clean.
 */
export async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.setDefaultTimeout(10_000);
  await page.goto(url);
  return { page, problems };
}
