// The arena's web page. Built to app.js by scripts/build-browser.ts; the import of the
// client below becomes `import … from '/volley.js'` there (the SDK bundle the server
// serves), so the page typechecks against the real client and ships no copy of it.

import { VolleyClient, type ClientContext, type ConnectionState, type Handlers } from '../../client/index.ts';
import type { ArenaClient, ArenaServer, Move, RoundInfo, Standing } from '../api.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const show = (id: string, on: boolean) => ($(id).hidden = !on);

let client: VolleyClient<ArenaServer, ArenaClient> | undefined;
let me = '';

// ---- connection ---------------------------------------------------------------------

const BADGE: Record<ConnectionState, string> = {
  connecting: 'connecting',
  open: 'connected',
  reconnecting: 'reconnecting',
  closed: 'offline',
};

function renderState(state: ConnectionState): void {
  const badge = $('state');
  badge.textContent = BADGE[state];
  badge.className = `badge ${BADGE[state]}`;
  badge.dataset.state = BADGE[state];
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void login($<HTMLInputElement>('name').value.trim());
});

async function login(name: string): Promise<void> {
  $<HTMLButtonElement>('connect').disabled = true;
  show('login-error', false);
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  const c = new VolleyClient<ArenaServer, ArenaClient>(url, { token: name, handlers });
  client = c;
  c.on('state', renderState);
  // Every new session (the first, or after a server restart) reads the live leaderboard, a
  // stream that a resume keeps; a new session also forgot our place in the queue.
  c.on('open', ({ resumed }) => {
    if (!resumed) {
      void watchLeaderboard();
      $<HTMLButtonElement>('queue').disabled = false;
      $('queue-status').textContent = '';
    }
  });
  c.on('state', (s) => {
    if (s === 'closed') onOffline(c);
  });
  renderState(c.state);
  try {
    await c.opened;
  } catch {
    return; // onOffline shows the form again
  }
  me = name;
  localStorage.setItem('arena.name', name);
  $('me').textContent = name;
  show('login', false);
  show('lobby', true);
}

function onOffline(c: VolleyClient<ArenaServer, ArenaClient>): void {
  if (client !== c) return;
  const why = c.closeInfo?.code === 4000 ? 'this name logged in elsewhere' : 'could not connect (is the name taken or invalid?)';
  $('login-error').textContent = me ? `offline: ${why}` : why;
  show('login-error', true);
  show('login', true);
  show('lobby', false);
  $<HTMLButtonElement>('connect').disabled = false;
  me = '';
}

$('queue').addEventListener('click', async () => {
  if (!client) return;
  const button = $<HTMLButtonElement>('queue');
  button.disabled = true;
  try {
    const { waiting } = await client.server.queue();
    $('queue-status').textContent = waiting > 1 ? 'opponent found…' : 'waiting for an opponent…';
  } catch (err) {
    $('queue-status').textContent = `could not queue: ${(err as Error).message}`;
    button.disabled = false;
  }
});

// ---- what the server calls on this page -----------------------------------------------

const handlers: Handlers<ArenaClient, ClientContext<ArenaServer>> = {
  chooseMove: (ctx, info) => askMove(ctx.signal, info),
  matchStart: (_ctx, info) => {
    const opponent = info.players.find((p) => p !== me) ?? '?';
    $('match-title').textContent = `Match ${info.matchId}: you vs ${opponent} (best of ${info.rounds})`;
    $('rounds').replaceChildren();
    $('score').textContent = '0 – 0';
    $('turn-note').textContent = '';
    show('match-result', false);
    show('match', true);
    $('queue-status').textContent = 'in a match';
  },
  roundResult: (_ctx, r) => {
    const opponent = Object.keys(r.moves).find((p) => p !== me) ?? '?';
    const outcome = r.winner === null ? 'draw' : r.winner === me ? 'win' : 'loss';
    const li = document.createElement('li');
    li.className = outcome;
    li.dataset.outcome = outcome;
    li.textContent = `Round ${r.round}: you ${r.moves[me] ?? 'no answer'}, ${opponent} ${r.moves[opponent] ?? 'no answer'} → ${
      outcome === 'draw' ? 'draw' : outcome === 'win' ? 'you win' : `${opponent} wins`
    }`;
    $('rounds').append(li);
    $('score').textContent = `${r.score[me] ?? 0} – ${r.score[opponent] ?? 0}`;
  },
  matchEnd: (_ctx, end) => {
    const outcome = end.winner === null ? 'draw' : end.winner === me ? 'win' : 'loss';
    const result = $('match-result');
    result.className = `result ${outcome}`;
    result.dataset.outcome = outcome;
    result.textContent = outcome === 'win' ? 'You won the match!' : outcome === 'loss' ? `${end.winner} won the match.` : 'The match is a draw.';
    show('match-result', true);
    $('turn-note').textContent = '';
    $('queue-status').textContent = '';
    $<HTMLButtonElement>('queue').disabled = false;
  },
  leaderboardChanged: () => {}, // the page reads the watchLeaderboard stream instead
};

/**
 * Show the three moves and a countdown of the server's deadline; resolve with the click.
 * The server gives up at the deadline (or the match ends): then ctx.signal fires and the
 * buttons go away, whatever the countdown shows.
 */
function askMove(signal: AbortSignal, info: RoundInfo): Promise<Move> {
  const ends = performance.now() + info.deadlineMs;
  $('round-label').textContent = `Round ${info.round} of ${info.rounds}: your move!`;
  $('turn-note').textContent = '';
  show('turn', true);
  const tick = () => {
    const left = Math.max(0, ends - performance.now());
    $('countdown').textContent = (left / 1000).toFixed(1);
    $('countdown-bar').style.width = `${(100 * left) / info.deadlineMs}%`;
  };
  tick();
  const timer = setInterval(tick, 100);
  return new Promise<Move>((resolve, reject) => {
    const buttons = Array.from($('moves').querySelectorAll<HTMLButtonElement>('button'));
    const onClick = (ev: Event) => {
      const move = (ev.currentTarget as HTMLButtonElement).dataset.move as Move;
      cleanup(`you played ${move}, waiting for the result…`);
      resolve(move);
    };
    const onAbort = () => {
      // Counted on the element: the next round may replace the note in the same task.
      $('turn').dataset.missed = String(Number($('turn').dataset.missed ?? 0) + 1);
      cleanup('too late: the server stopped waiting for your move');
      reject(signal.reason);
    };
    const cleanup = (note: string) => {
      clearInterval(timer);
      for (const b of buttons) b.removeEventListener('click', onClick);
      signal.removeEventListener('abort', onAbort);
      show('turn', false);
      $('turn-note').textContent = note;
    };
    for (const b of buttons) b.addEventListener('click', onClick);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- leaderboard ----------------------------------------------------------------------

/** The live leaderboard (a stream: the top now, then after every match), for as long as the session lasts. */
async function watchLeaderboard(): Promise<void> {
  try {
    for await (const top of client!.stream('watchLeaderboard', [10])) renderLeaderboard(top);
  } catch {
    // the session ended (a server restart): the next new session starts another
  }
}

function renderLeaderboard(top: Standing[]): void {
  const rows = top.map((s, i) => {
    const tr = document.createElement('tr');
    if (s.uid === me) tr.className = 'me';
    tr.dataset.uid = s.uid;
    for (const v of [i + 1, s.uid, s.wins, s.losses, s.draws, s.points]) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.append(td);
    }
    return tr;
  });
  $('leaderboard').querySelector('tbody')!.replaceChildren(...rows);
  show('leaderboard-empty', rows.length === 0);
}

$<HTMLInputElement>('name').value = localStorage.getItem('arena.name') ?? '';
