// volley/protocol: wire format, error codes, limits and the shared call engine. No I/O.
export { ErrorCode, RpcError, toRpcError, isRpcError, type WireError } from './errors.ts';
export { DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, resolveLimits, type Limits } from './limits.ts';
export {
  REQUEST,
  RESPONSE,
  NOTIFICATION,
  CANCEL,
  MAX_ID,
  ProtocolViolation,
  parseMessage,
  type Message,
  type RequestMessage,
  type ResponseMessage,
  type NotificationMessage,
} from './messages.ts';
export { encode, decodeFrame, concatFrames } from './codec.ts';
export { RpcPeer, InboundCall, toMap, outgoingError, type PeerOptions, type Timers, type AnyHandler, type ReplayStore } from './peer.ts';
export { createProxy } from './proxy.ts';
export type { PeerObserver } from './observer.ts';
export { CallTracing, type OtelApi, type OtelSpan } from './tracing.ts';
export { TRACE, formatTraceparent, parseTraceparent, type TraceParent } from './traceContext.ts';
export { checkParams, type ParamsSchema, type ParamsGuard, type StandardSchemaV1 } from './schema.ts';
export { CloseCode } from './closeCodes.ts';
export { SESSION, PING, PONG, isSessionInfo, type SessionInfo } from './session.ts';
export type * from './contract.ts';
