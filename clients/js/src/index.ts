export { backoffDelay, type BackoffOptions } from './backoff.js';
export {
  type Change,
  type ChatState,
  type LocalMessage,
  type MessageState,
  ParleyClient,
  type ParleyClientOptions,
  type ParleyEvents,
  type PendingMessage,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export { Emitter } from './emitter.js';
export { type FetchLike, type FetchResponseLike, ParleyHttp, ParleyHttpError } from './http.js';
export { Outbox, type OutboxItem, type OutboxStorage, webStorageOutbox } from './outbox.js';
export { type ApplyResult, ChatTimeline } from './timeline.js';
export * from './types.js';
