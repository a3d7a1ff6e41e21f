// cluster-tick's seating plan, shared by the orchestrator (which node each player connects
// to) and the nodes (which room a player joins, which rooms a node runs the game of).
//
// Players are numbered 0..players-1 (uid `u<n>`, as bench/clients/worker.ts names them) and
// node k holds a contiguous block of them. Rooms hold `roomSize` players each:
// - `room`: a room's members all sit on one node, the node that runs its game (what a
//   matchmaker on that node does): room r is players r·size … r·size+size-1.
// - `spread`: a room's members are spread over the nodes (room r is players r, r+R, r+2R, …
//   of R rooms; with blocks per node, that is size/nodes members on each node) and node
//   r mod nodes runs its game: room traffic and server calls cross nodes through Redis.

export type Placement = 'room' | 'spread';

export interface Plan {
  players: number;
  roomSize: number;
  nodes: number;
  placement: Placement;
  rooms: number;
}

export function plan(players: number, roomSize: number, nodes: number, placement: Placement): Plan {
  return { players, roomSize, nodes, placement, rooms: Math.ceil(players / roomSize) };
}

/** Node k's players: [first, first + count). Whole rooms per node, spread as evenly as they go. */
export function block(p: Plan, k: number): { first: number; count: number } {
  const first = Math.min(p.players, Math.floor((k * p.rooms) / p.nodes) * p.roomSize);
  const end = Math.min(p.players, Math.floor(((k + 1) * p.rooms) / p.nodes) * p.roomSize);
  return { first, count: end - first };
}

export function roomOfPlayer(p: Plan, player: number): number {
  return p.placement === 'room' ? Math.floor(player / p.roomSize) : player % p.rooms;
}

export function members(p: Plan, room: number): number[] {
  const out: number[] = [];
  if (p.placement === 'room') for (let q = room * p.roomSize; q < Math.min(p.players, (room + 1) * p.roomSize); q++) out.push(q);
  else for (let q = room; q < p.players; q += p.rooms) out.push(q);
  return out;
}

/** The rooms whose game node k runs. */
export function hostedRooms(p: Plan, k: number): number[] {
  const out: number[] = [];
  if (p.placement === 'room') {
    const { first, count } = block(p, k);
    for (let r = first / p.roomSize; r < Math.ceil((first + count) / p.roomSize); r++) out.push(r);
  } else for (let r = k; r < p.rooms; r += p.nodes) out.push(r);
  return out;
}

export const roomName = (room: number): string => `g${room}`;
export const uidOf = (player: number): string => `u${player}`;
