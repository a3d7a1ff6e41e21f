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
export { encode, encodeOwned, owned, readFrame, decodeFrame, concatFrames, COST_PER_ELEMENT, type FrameMessage, type FrameLimits } from './codec.ts';
export { scanMessage, ScanResult, TruncatedMsgpack, type ScanLimits } from './scan.ts';
export { RpcPeer, InboundCall, toMap, outgoingError, DEFAULT_MAX_HELD_BYTES, type PeerOptions, type Timers, type AnyHandler, type HeldTotal } from './peer.ts';
export { PendingCalls, MAX_TIMER_MS, type PendingCall } from './engine/pendingCalls.ts';
export {
  exportSession,
  importSession,
  relayedAnswer,
  relayedCancel,
  relayedGiveUp,
  relayedResponse,
  relayedItem,
  relayedItemOut,
  MovedCall,
  type SessionImage,
  type Relay,
  type RelayBack,
} from './engine/handover.ts';
export { ACK_EVERY_MESSAGES, ACK_EVERY_BYTES, DEFAULT_MAX_UNACKED_BYTES } from './engine/reliable.ts';
export { STREAM_WINDOW } from './engine/streams.ts';
export { hasUpload } from './engine/uploads.ts';
export { wireError, errorResponse } from './refusals.ts';
export { createOneOffProxy, createProxy } from './proxy.ts';
export type { PeerObserver } from './observer.ts';
export { CallTracing, type OtelApi, type OtelSpan } from './tracing.ts';
export { TRACE, formatTraceparent, parseTraceparent, type TraceParent } from './traceContext.ts';
export { checkParams, type ParamsSchema, type ParamsGuard, type StandardSchemaV1 } from './schema.ts';
export { CloseCode } from './closeCodes.ts';
export { SESSION, PING, PONG, ACK, LIMITS, FEATURES, ITEMS_FEATURE, SUPPORTED_FEATURES, ANNOUNCED_LIMITS, announcedLimits, isSessionInfo, type SessionInfo, type AnnouncedLimits } from './session.ts';
export type * from './contract.ts';
