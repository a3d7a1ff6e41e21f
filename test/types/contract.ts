// Compile-only test of the typed contracts (never run). Each `@ts-expect-error` line must
// be a type error: tsc fails on an unused one, and test/core-types.test.ts also removes
// every directive and checks each such line then really fails to compile.
// Check: npx tsc --noEmit -p test/types/tsconfig.json

import { createServer, type ServerContext, type Outcome } from '../../server/index.ts';
import { connect, type ClientContext } from '../../client/index.ts';

type Move = 'rock' | 'paper' | 'scissors';

interface ServerApi {
  join(name: string): { room: string };
  play(move: Move, round: number): Promise<boolean>;
  leave(): void;
}
interface ClientApi {
  chooseMove(round: number): Move;
  result(winner: string | null): void;
}

declare const ws: never;

// ---- server: handlers are checked against ServerApi -------------------------------------

const server = createServer<ServerApi, ClientApi>({
  authenticate: (req) => req.token,
  handlers: {
    join: (ctx, name) => {
      const uid: string = ctx.uid;
      const n: string = name;
      return { room: `${uid}-${n}` };
    },
    play: async (ctx, move, round) => {
      const theirs: Move = await ctx.client.chooseMove(round);
      return theirs !== move;
    },
    leave: () => {},
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  handlers: {
    // @ts-expect-error handler param of the wrong type (name is a string)
    join: (_ctx, name: number) => ({ room: String(name) }),
    play: async () => true,
    leave: () => {},
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  handlers: {
    // @ts-expect-error handler returns the wrong type
    join: () => ({ room: 42 }),
    play: async () => true,
    leave: () => {},
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  handlers: {
    join: () => ({ room: 'r' }),
    // @ts-expect-error async handler resolving the wrong type
    play: async () => 'yes',
    leave: () => {},
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  // @ts-expect-error a handler is missing (leave)
  handlers: {
    join: () => ({ room: 'r' }),
    play: async () => true,
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  handlers: {
    join: () => ({ room: 'r' }),
    play: async () => true,
    leave: () => {},
    // @ts-expect-error a handler the API does not declare
    extra: () => 1,
  },
});

createServer<ServerApi, ClientApi>({
  authenticate: () => 'x',
  handlers: {
    join: (ctx) => {
      // @ts-expect-error the context's client proxy is typed: chooseMove takes a number
      void ctx.client.chooseMove('one');
      return { room: 'r' };
    },
    play: async () => true,
    leave: () => {},
  },
});

// ---- server → client calls ------------------------------------------------------------

export async function serverCalls(): Promise<void> {
  const m: Move = await server.to('u1').chooseMove(1);
  const viaCall: Move = await server.call('u1', 'chooseMove', [2], { timeoutMs: 500 });
  server.notify('u1', 'result', null);
  server.notifyRoom('table', 'result', 'u1');
  const outcomes: Outcome<Move>[] = await server.callMany(['u1', 'u2'], 'chooseMove', [3]);
  for (const o of outcomes) if (o.status === 'ok') void (o.value satisfies Move);
  void m;
  void viaCall;

  // @ts-expect-error wrong argument type through the proxy
  await server.to('u1').chooseMove('1');
  // @ts-expect-error missing argument
  await server.to('u1').chooseMove();
  // @ts-expect-error method the client does not have
  await server.to('u1').fly();
  // @ts-expect-error result is a Move, not a number
  const wrong: number = await server.to('u1').chooseMove(1);
  // @ts-expect-error call(): args tuple of the wrong type
  await server.call('u1', 'chooseMove', ['1']);
  // @ts-expect-error call(): unknown method name
  await server.call('u1', 'nope', []);
  // @ts-expect-error notify(): wrong argument type
  server.notify('u1', 'result', 42);
  // @ts-expect-error notifyRoom(): wrong argument type
  server.notifyRoom('table', 'result', 1);
  // @ts-expect-error callMany(): wrong args
  await server.callMany({ room: 'table' }, 'chooseMove', ['x']);
  // @ts-expect-error callMany() outcome values are Moves
  const bad: Outcome<number>[] = await server.callMany(['u1'], 'chooseMove', [1]);
  void wrong;
  void bad;
}

// ---- client: handlers checked against ClientApi, calls against ServerApi ----------------------

export async function clientSide(): Promise<void> {
  const client = await connect<ServerApi, ClientApi>('ws://x', {
    WebSocket: ws,
    handlers: {
      chooseMove: (ctx: ClientContext<ServerApi>, round) => (round % 2 ? 'rock' : 'paper'),
      result: () => {},
    },
  });
  const joined: { room: string } = await client.server.join('ann');
  const won: boolean = await client.with({ timeoutMs: 100 }).play('rock', 1);
  const viaCall: { room: string } = await client.call('join', ['bob']);
  client.notify('leave');
  void joined;
  void won;
  void viaCall;

  // @ts-expect-error wrong argument type
  await client.server.join(42);
  // @ts-expect-error not a Move
  await client.server.play('lizard', 1);
  // @ts-expect-error too many arguments
  await client.server.join('a', 'b');
  // @ts-expect-error unknown server method
  await client.server.teleport();
  // @ts-expect-error the proxy returns a promise, not the value
  const notAwaited: { room: string } = client.server.join('x');
  // @ts-expect-error with() proxy is typed too
  await client.with({ timeoutMs: 5 }).join(1);
  // @ts-expect-error call(): args of the wrong type
  await client.call('join', [1]);
  // @ts-expect-error notify(): missing argument
  client.notify('join');
  void notAwaited;

  await connect<ServerApi, ClientApi>('ws://x', {
    WebSocket: ws,
    handlers: {
      // @ts-expect-error client handler returns something that is not a Move
      chooseMove: () => 'lizard',
      result: () => {},
    },
  });
  await connect<ServerApi, ClientApi>('ws://x', {
    WebSocket: ws,
    handlers: {
      chooseMove: () => 'rock',
      // @ts-expect-error client handler param of the wrong type
      result: (_ctx, winner: number) => void winner,
    },
  });
}

export type { ServerContext };

// ---- client: the WebSocket option takes the `ws` package's and the DOM's as they are -------

import NodeWebSocket from 'ws';
void connect('ws://x/', { WebSocket: NodeWebSocket });
void connect('ws://x/', { WebSocket: globalThis.WebSocket });
// @ts-expect-error: not a WebSocket constructor
void connect('ws://x/', { WebSocket: Map });
