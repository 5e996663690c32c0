// TypeScript declarations for herald-client.js (the Herald JavaScript SDK); the module itself needs no build step.

/** The WebSocket subprotocol the SDK speaks. */
export const PROTOCOL: "herald.v1.json";

/** Where a subscription stands: the last serial the application has received, and the channel's epoch. */
export interface Position {
  serial: number;
  epoch: string;
}

export type ConnectionState = "connecting" | "connected" | "disconnected" | "closed";

/** Tunables; every time is in milliseconds. A missing or invalid number takes its DEFAULT_OPTIONS value. */
export interface HeraldOptions {
  /** A JWT sent in `connect` (and `refresh`). */
  token?: string;
  /** Called for a fresh token before the current one expires, on `token_expired` and after close 4001. */
  getToken?: () => string | Promise<string>;
  /** A display name for the application's own use (the demo shows it); not sent to the node. */
  name?: string;
  /** A WebSocket constructor to use instead of the global one (or the `ws` package in Node). */
  WebSocket?: unknown;
  /** Full-jitter exponential backoff: attempt n waits a uniform delay in [0, min(backoffCap, backoffBase·2^n)]. */
  backoffBase?: number;
  backoffCap?: number;
  /** Connected this long, the backoff counter starts again from 0. */
  stableAfter?: number;
  /** From opening the socket to `connected`. */
  connectTimeout?: number;
  /** Silence before the SDK sends `ping`; 0: the heartbeat the node announces in `connected`. */
  pingInterval?: number;
  /** Silence after that `ping` before the connection counts as dead and the SDK reconnects. */
  pongTimeout?: number;
  /** Publishes waiting to be sent (offline or paced); beyond it publish() rejects with `queue_full`. */
  maxQueue?: number;
  /** Commands per second the SDK sends at most (0: no pacing) and its burst; below the node's --client-rate. */
  rate?: number;
  burst?: number;
  /** Wait before a command refused with `rate_limited` is sent again. */
  retryDelay?: number;
  /** Refresh the token this long before its `exp` (at most half its remaining life); 0: on `token_expired` only. */
  refreshBefore?: number;
  /** Largest publish the SDK sends, in bytes; larger ones reject with `message_too_large` locally. */
  maxMessageSize?: number;
}

export const DEFAULT_OPTIONS: Readonly<Required<Omit<HeraldOptions, "token" | "getToken" | "name" | "WebSocket">>>;

/** Every Promise of the SDK rejects with a HeraldError; `code` is a protocol error code or one of the SDK's own
 * (`closed`, `queue_full`, `message_too_large`, `token_unavailable`, `no_websocket`, `bad_url`, `bad_request`). */
export class HeraldError extends Error {
  constructor(code: string, message?: string, extra?: { closeCode?: number; channel?: string; cause?: unknown });
  readonly name: "HeraldError";
  readonly code: string;
  readonly closeCode?: number;
  readonly channel?: string;
}

/** The `exp` claim of a JWT in milliseconds since the epoch, read without verification; null when there is none. */
export function tokenExpiry(token: string): number | null;

export interface StateInfo {
  previous: ConnectionState;
  /** `connected`: the node's name, the session, whether the session was resumed, the heartbeat in seconds. */
  node?: string;
  session?: string;
  resumed?: boolean;
  heartbeat?: number;
  /** `disconnected` and `closed`: the close code (0 when the socket never closed cleanly) and reason. */
  code?: number;
  reason?: string;
  /** `disconnected`: the wait before the next attempt, and the attempt number (0 first). `connecting`: attempt. */
  delay?: number;
  attempt?: number;
  /** `closed` by a terminal failure. */
  error?: HeraldError;
}

export interface MessageInfo {
  channel: string;
  serial: number;
  epoch: string;
}

export interface SubscribedInfo {
  channel: string;
  serial: number;
  epoch: string;
  resumed: boolean;
  replayed: number;
  /** True when the node restored the subscription from the session rather than answering a `subscribe`. */
  restored: boolean;
  reason?: string;
}

/** Messages the application did not and will not receive. `serial` is where the stream continues from. */
export interface DiscontinuityInfo {
  channel: string;
  /** `history_expired`, `epoch_changed`, `not_resumed`, `gap_detected` or a reason the node sent. */
  reason: string;
  epoch: string;
  serial: number;
  previous: Position | null;
}

declare class Emitter<Events extends Record<string, (...args: any[]) => void>> {
  on<E extends keyof Events>(event: E, listener: Events[E]): this;
  off<E extends keyof Events>(event: E, listener: Events[E]): this;
  once<E extends keyof Events>(event: E, listener: Events[E]): this;
}

export interface SubscriptionEvents {
  [event: string]: (...args: any[]) => void;
  message: (data: unknown, info: MessageInfo) => void;
  subscribed: (info: SubscribedInfo) => void;
  discontinuity: (info: DiscontinuityInfo) => void;
  unsubscribed: (info: { channel: string; reason?: string }) => void;
  error: (error: HeraldError) => void;
}

export class Subscription extends Emitter<SubscriptionEvents> {
  readonly client: Herald;
  readonly channel: string;
  /** What the application has received; null before the first `subscribed`. */
  readonly position: Position | null;
  readonly state: "pending" | "subscribed" | "ended";
  unsubscribe(): Promise<void>;
}

export interface HistoryResult {
  channel: string;
  epoch: string;
  serial: number;
  messages: Array<{ serial: number; data: unknown }>;
}

export interface HeraldEvents {
  [event: string]: (...args: any[]) => void;
  state: (state: ConnectionState, info: StateInfo) => void;
  error: (error: HeraldError) => void;
  refreshed: (info: { expires?: number }) => void;
}

export class Herald extends Emitter<HeraldEvents> {
  constructor(url: string | URL, options?: HeraldOptions);
  readonly url: string;
  readonly options: Required<Omit<HeraldOptions, "token" | "getToken" | "name" | "WebSocket">> & HeraldOptions;
  readonly name?: string;
  readonly state: ConnectionState;
  readonly node: string | null;
  readonly session: string | null;
  readonly heartbeat: number | null;
  readonly token: string | undefined;
  /** Publishes waiting to be sent. */
  readonly queued: number;
  readonly subscriptions: Map<string, Subscription>;

  /** Resolves at the first `connected`; rejects when the client fails for good (e.g. 4001 with no new token). */
  connect(): Promise<void>;
  /** Closes for good: pending publishes and history requests reject with `closed`. */
  close(): void;
  /** A new token for the next connect; sent at once with `refresh` when connected. */
  setToken(token: string): void;

  subscribe(channel: string, options?: { since?: Position | null }): Subscription;
  /** Stored once even when retried after a reconnect (an idempotency key travels with every attempt). */
  publish(channel: string, data: unknown, options?: { key?: string }): Promise<{ channel: string; serial: number }>;
  history(channel: string, options?: { since?: number | Position; limit?: number }): Promise<HistoryResult>;
}

export default Herald;
