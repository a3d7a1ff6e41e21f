// socket.io v4 with emitWithAck both ways. BENCH_ENGINE=uws attaches it to a
// uWebSockets.js app (io.attachApp); otherwise the default ws engine on node:http.

import http from 'node:http';
import { loadNativeUws } from '../../server/transports/uws.ts';
import { Server, type Socket } from 'socket.io';
import { game, gameRoomSize, handled, host } from './host.ts';
import { roomOf } from '../lib/game.ts';

const inRoom = process.env.BENCH_ROOM === '1';
const onUws = process.env.BENCH_ENGINE === 'uws';
const sockets: Socket[] = [];
let arrivals = 0;

const io = new Server({ serveClient: false, transports: ['websocket'] });
io.on('connection', (socket) => {
  sockets.push(socket);
  if (inRoom) socket.join('all');
  if (gameRoomSize > 0) socket.join(roomOf(arrivals++, gameRoomSize));
  socket.on('add', (a: number, b: number, ack: (r: number) => void) => {
    handled.count++;
    ack(a + b);
  });
  socket.on('echo', (x: unknown, ack: (r: unknown) => void) => {
    handled.count++;
    ack(x);
  });
  socket.on('input', (_seq: number, _dx: number, _dy: number) => {
    game.inputs++;
  });
  socket.on('act', (_kind: number, _x: number, _y: number, ack: (r: { ok: boolean; tick: number }) => void) => {
    game.acts++;
    ack({ ok: true, tick: game.ticks });
  });
  socket.on('disconnect', () => {
    const i = sockets.indexOf(socket);
    if (i >= 0) sockets.splice(i, 1);
  });
});

function listen(): Promise<number> {
  if (onUws) {
    const uws = loadNativeUws().native?.uws;
    if (!uws) throw new Error(`no native uWebSockets.js: ${loadNativeUws().why}`);
    const app = uws.App();
    io.attachApp(app);
    return new Promise((resolve, reject) =>
      app.listen('127.0.0.1', 0, (s) => (s ? resolve(uws.us_socket_local_port(s)) : reject(new Error('listen failed')))),
    );
  }
  const server = http.createServer();
  io.attach(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

host({
  listen,
  clientCount: () => sockets.length,
  call: (i, method, args, done) => {
    sockets[i]!.timeout(10_000).emitWithAck(method, ...args).then(() => done(), done);
  },
  callAll: (method, args, done) => {
    io.timeout(10_000).emitWithAck(method, ...args).then(() => done(), done);
  },
  broadcast: (t) => {
    io.to('all').emit('tick', t);
  },
  roomNotify: (name, state) => {
    io.to(name).emit('state', state);
  },
  callPlayer: (i, tick, ms, done) => {
    sockets[i]!.timeout(ms).emitWithAck('ready', tick).then(() => done(), done);
  },
});
