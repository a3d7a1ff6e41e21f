/**
 * The wire format (msgpack-rpc, see SPEC.md), error and close codes, limits and the call
 * engine both sides share. No I/O.
 *
 * @module volley/protocol
 */
export * from '../../protocol/index.ts';
