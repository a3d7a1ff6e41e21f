// The demo page in real chromium: a player connects, queues, plays a best-of-3 against a
// Node client, clicking moves against the server's countdown (and missing one deadline),
// sees the result and the leaderboard, and comes back by itself after a server restart.
// Saves docs/screenshot.png. Then two browser pages play each other.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { connect } from '../client/index.ts';
import type { ArenaClient, ArenaServer, Move, RoundResult } from '../demo/api.ts';
import { startDemo, type Demo } from '../demo/server.ts';
import { buildBrowser } from '../scripts/build-browser.ts';
import { launchBrowser, openPage, skipReason } from './browser/chromium.ts';
import { freePort, until } from './helpers.ts';

const SCREENSHOT = fileURLToPath(new URL('../docs/screenshot.png', import.meta.url));
// Long enough that a click lands in time on a loaded CI machine; round 2 waits it out.
const DEADLINE_MS = 4000;

t.test('demo page: a browser plays the arena against a Node client', { skip: skipReason() }, async (t) => {
  // The demo server serves dist/volley.browser.js and demo/public/app.js from disk.
  await buildBrowser({ quiet: true });
  // A fixed port, as `npm start` uses: uWebSockets.js sets SO_REUSEADDR only then, and
  // the restart below must bind past the old server's TIME_WAIT sockets.
  const port = await freePort();
  let demo: Demo = await startDemo({ host: '127.0.0.1', port, moveDeadlineMs: DEADLINE_MS, rounds: 3 });
  t.teardown(() => demo.close());
  const url = `ws://127.0.0.1:${port}/`;

  // A Node player that always plays the same move (so the screenshot is the same each run).
  const player = async (name: string, move: Move, seen: RoundResult[] = []) => {
    const c = await connect<ArenaServer, ArenaClient>(url, {
      token: name,
      WebSocket,
      handlers: {
        chooseMove: () => move,
        matchStart: () => {},
        roundResult: (_ctx, r) => void seen.push(r),
        matchEnd: () => {},
        leaderboardChanged: () => {},
      },
    });
    t.teardown(() => c.close());
    return c;
  };

  // Two Node players finish a match first, so the page finds a leaderboard when it connects.
  const ann = await player('node-ann', 'paper');
  const bob = await player('node-bob', 'rock');
  await ann.server.queue();
  await bob.server.queue();
  await until(() => demo.arena.leaderboard.top().length === 2, 5000, 'the Node players’ match');

  // The page's opponent always plays rock.
  const seen: RoundResult[] = [];
  const rocky = await player('rocky', 'rock', seen);

  const browser = await launchBrowser(t);
  const { page, problems } = await openPage(browser, `http://127.0.0.1:${port}/`);
  const badge = page.locator('#state');

  await page.fill('#name', 'alice');
  await page.click('#connect');
  await page.locator('#state[data-state="connected"]').waitFor();
  t.equal(await badge.textContent(), 'connected', 'badge shows connected');
  t.equal(await page.locator('#me').textContent(), 'alice');
  await page.locator('#leaderboard tbody tr').nth(1).waitFor();
  t.equal(await page.locator('#leaderboard tbody tr').count(), 2, 'leaderboard() on connect shows the earlier match');

  await rocky.server.queue();
  await page.click('#queue');
  await page.locator('#match-title').filter({ hasText: 'you vs rocky' }).waitFor();

  // Round 1: the countdown runs, alice plays paper and wins.
  await page.locator('#round-label').filter({ hasText: 'Round 1 of 3' }).waitFor();
  await page.locator('#turn').waitFor({ state: 'visible' });
  const left = Number(await page.locator('#countdown').textContent());
  t.ok(left > 0 && left <= DEADLINE_MS / 1000, `countdown shows ${left} s of the ${DEADLINE_MS / 1000} s deadline`);
  await page.waitForFunction((s) => Number(document.getElementById('countdown')!.textContent) < s, left);
  t.pass('the countdown ticks down');
  await page.click('[data-move="paper"]');

  // Round 2: alice lets the deadline pass; the server's cancel takes the buttons away.
  await page.locator('#round-label').filter({ hasText: 'Round 2 of 3' }).waitFor();
  await page.locator('#turn').waitFor({ state: 'visible' });
  // The cancel, the result and round 3's call can land in one frame, so the buttons may
  // never render hidden in between: the page counts aborted move requests instead.
  await page.locator('#turn[data-missed="1"]').waitFor({ state: 'attached', timeout: DEADLINE_MS + 3000 });
  t.pass('ctx.signal fired in the page at the deadline (the server cancelled the move request)');

  // Round 3: paper again.
  await page.locator('#round-label').filter({ hasText: 'Round 3 of 3' }).waitFor();
  await page.locator('#turn').waitFor({ state: 'visible' });
  await page.click('[data-move="paper"]');

  await page.locator('#match-result').waitFor({ state: 'visible' });
  t.equal(await page.locator('#match-result').getAttribute('data-outcome'), 'win');
  t.equal(await page.locator('#match-result').textContent(), 'You won the match!');
  t.same(await page.locator('#rounds li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.outcome)), ['win', 'loss', 'win'], 'round results from the room notifications');
  t.match(await page.locator('#rounds li').nth(1).textContent(), /you no answer, rocky rock/);
  t.equal(await page.locator('#score').textContent(), '2 – 1');
  t.same(seen.map((r) => r.moves.alice), ['paper', null, 'paper'], 'the server got the clicked moves (and no answer in round 2)');

  const row = (uid: string) => page.locator(`#leaderboard tr[data-uid="${uid}"] td`).allTextContents();
  await page.locator('#leaderboard tr[data-uid="alice"]').waitFor();
  t.same((await row('alice')).slice(1), ['alice', '1', '0', '0', '3'], 'leaderboardChanged: alice 1 win, 3 points');
  t.same((await row('rocky')).slice(1), ['rocky', '0', '1', '0', '0'], 'rocky 1 loss');
  t.equal(await page.locator('#leaderboard tbody tr').count(), 4);

  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.pass(`screenshot saved to ${SCREENSHOT}`);

  // The server restarts on the same port: the badge shows reconnecting, then connected,
  // and the new server's (empty) leaderboard replaces the old one.
  await demo.close();
  await page.locator('#state[data-state="reconnecting"]').waitFor();
  t.pass('badge shows reconnecting while the server is down');
  demo = await startDemo({ host: '127.0.0.1', port, moveDeadlineMs: DEADLINE_MS });
  await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
  await page.locator('#leaderboard-empty').waitFor({ state: 'visible' });
  t.pass('reconnected by itself to the restarted server; leaderboard refetched');
  await until(() => demo.server.isOnline('alice'), 2000, 'alice on the new server');
  t.equal(await page.locator('#queue').isEnabled(), true, 'queue button usable again in the new session');

  // Browser console errors while the server is down are the refused reconnects only.
  t.same(problems.filter((p) => !/WebSocket connection to .* failed/.test(p)), [], 'the page ran clean');
});

t.test('demo page: two browsers play each other', { skip: skipReason() }, async (t) => {
  await buildBrowser({ quiet: true });
  const demo = await startDemo({ host: '127.0.0.1', moveDeadlineMs: DEADLINE_MS, rounds: 3 });
  t.teardown(() => demo.close());
  const browser = await launchBrowser(t);
  const players = { bob: 'rock', carol: 'scissors' } as const;
  const pages = [];
  for (const name of Object.keys(players) as (keyof typeof players)[]) {
    const { page, problems } = await openPage(browser, `http://127.0.0.1:${demo.port}/`);
    await page.fill('#name', name);
    await page.click('#connect');
    await page.locator('#state[data-state="connected"]').waitFor();
    pages.push({ name, page, problems });
  }
  for (const { page } of pages) await page.click('#queue');
  // Rock beats scissors: bob takes rounds 1 and 2, and with them the match.
  for (const round of [1, 2]) {
    for (const { name, page } of pages) {
      await page.locator('#round-label').filter({ hasText: `Round ${round} of 3` }).waitFor();
      await page.click(`[data-move="${players[name]}"]`);
    }
  }
  const [bob, carol] = pages;
  await bob!.page.locator('#match-result').waitFor({ state: 'visible' });
  await carol!.page.locator('#match-result').waitFor({ state: 'visible' });
  t.equal(await bob!.page.locator('#match-result').textContent(), 'You won the match!');
  t.equal(await carol!.page.locator('#match-result').textContent(), 'bob won the match.');
  t.equal(await carol!.page.locator('#score').textContent(), '0 – 2', 'carol sees her score first');
  await carol!.page.locator('#leaderboard tr[data-uid="bob"]').waitFor();
  t.same((await carol!.page.locator('#leaderboard tr[data-uid="bob"] td').allTextContents()).slice(1), ['bob', '1', '0', '0', '3'], 'both pages get the leaderboard');
  t.same([...bob!.problems, ...carol!.problems], [], 'both pages ran clean');
});
