// volley/client: the isomorphic client (browsers and Node). Standard WebSocket API only.
export {
  connect,
  VolleyClient,
  ClientContext,
  type ClientOptions,
  type ClientEvents,
  type CloseInfo,
  type ConnectionState,
  type WebSocketConstructor,
  type ReconnectOptions,
} from './client.ts';
export { ErrorCode, RpcError, isRpcError, CloseCode, type CallOptions, type Remote, type Handlers, type SessionInfo } from '../protocol/index.ts';
