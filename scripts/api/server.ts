/**
 * The server: `createServer(options)` and the {@link VolleyServer} it returns (calls to players by
 * uid, rooms, lifecycle hooks, HTTP routes, metrics), on native uWebSockets.js or `ws`. It
 * re-exports everything of `volley/protocol` (errors, codes, limits).
 *
 * @module volley/server
 */
export * from '../../server/index.ts';
