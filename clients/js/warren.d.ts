// Types for warren.js.

export type Body = string | Uint8Array | ArrayBuffer | ArrayBufferView | unknown;

/** AMQP basic properties, RabbitMQ management API names. */
export interface Properties {
  content_type?: string;
  content_encoding?: string;
  headers?: Record<string, unknown>;
  delivery_mode?: 1 | 2;
  priority?: number;
  correlation_id?: string;
  reply_to?: string;
  expiration?: string;
  message_id?: string;
  /** Unix seconds. */
  timestamp?: number;
  type?: string;
  user_id?: string;
  app_id?: string;
  cluster_id?: string;
}

export interface Options {
  /** A token from POST /v1/tokens (see Warren.fetchToken). */
  token?: string;
  /** Called before every (re)connect; preferred over token for long sessions. */
  getToken?: () => Promise<string> | string;
  /** Sent in the first frame instead of a token (use wss:). */
  username?: string;
  password?: string;
  vhost?: string;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** Backoff bounds in ms (defaults 250 and 30000), with jitter. */
  minDelay?: number;
  maxDelay?: number;
  /** WebSocket implementation for Node 20 (for example the 'ws' package). */
  WebSocket?: unknown;
}

export interface Welcome {
  op: "welcome";
  user: string;
  vhost: string;
  protocol: string;
  max_payload: number;
  expires_at?: string;
}

export class WarrenError extends Error {
  /** HTTP-style status (404, 403, 409, 423, 504, ...) or a WebSocket close code. */
  code: number;
  /** Short name such as "not_found". */
  error: string;
}

export class Message {
  subscription?: string;
  deliveryTag?: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  properties: Properties;
  /** string when the payload was UTF-8, else bytes. */
  body: string | Uint8Array;
  text(): string;
  json<T = unknown>(): T;
  ack(options?: { multiple?: boolean }): Promise<unknown>;
  nack(options?: { multiple?: boolean; requeue?: boolean }): Promise<unknown>;
  reject(options?: { requeue?: boolean }): Promise<unknown>;
}

export type Source = string | { queue: string } | { exchange: string; bindingKey?: string; arguments?: Record<string, unknown> };

export interface SubscribeOptions {
  /** Unacked messages in flight (ack "client"; default 100). */
  prefetch?: number;
  /** "auto" (default): no acks; "client": call message.ack(). */
  ack?: "auto" | "client";
  id?: string;
  onCancel?: (reason: string) => void;
}

export interface Subscription {
  readonly id: string;
  /** The queue consumed (server-named for exchange subscriptions). */
  readonly queue: string | undefined;
  unsubscribe(): Promise<void>;
}

export interface RestAuth {
  username: string;
  password?: string;
}

export class Warren {
  constructor(url?: string, options?: Options);
  readonly connected: boolean;
  welcome: Welcome | null;
  on(event: "open", fn: (w: Welcome) => void): () => void;
  on(event: "close", fn: (e: { code: number; reason: string; wasOpen: boolean }) => void): () => void;
  on(event: "error", fn: (e: Error) => void): () => void;
  on(event: "flow", fn: (active: boolean) => void): () => void;
  on(event: "reconnecting", fn: (e: { attempt: number; delay: number; error: Error }) => void): () => void;
  connect(): Promise<Welcome>;
  close(): void;
  request(frame: Record<string, unknown>): Promise<any>;
  publish(exchange: string, routingKey: string, body: Body, options?: { properties?: Properties }): Promise<{ routed: boolean }>;
  subscribe(source: Source, handler: (m: Message) => void | Promise<void>, options?: SubscribeOptions): Promise<Subscription>;
  unsubscribe(id: string): Promise<void>;
  ack(m: Message, options?: { multiple?: boolean }): Promise<unknown>;
  nack(m: Message, options?: { multiple?: boolean; requeue?: boolean }): Promise<unknown>;
  reject(m: Message, options?: { requeue?: boolean }): Promise<unknown>;
  rpc(exchange: string, routingKey: string, body: Body, options?: { timeout?: number; properties?: Properties }): Promise<Message>;
  declareQueue(name?: string, options?: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean; passive?: boolean; arguments?: Record<string, unknown> }): Promise<{ queue: string; messages: number; consumers: number }>;
  declareExchange(name: string, type?: "direct" | "fanout" | "topic" | "headers", options?: { durable?: boolean; autoDelete?: boolean; internal?: boolean; passive?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  bind(queue: string, exchange: string, routingKey?: string, args?: Record<string, unknown>): Promise<unknown>;
  unbind(queue: string, exchange: string, routingKey?: string, args?: Record<string, unknown>): Promise<unknown>;
  deleteQueue(name: string, options?: { ifUnused?: boolean; ifEmpty?: boolean }): Promise<{ messages: number }>;

  static fetchToken(baseUrl: string, username: string, password: string, options?: { ttlSeconds?: number }): Promise<string>;
  static restPublish(baseUrl: string, auth: RestAuth, exchange: string, routingKey: string, body: Body, options?: { contentType?: string; headers?: Record<string, string> }): Promise<{ routed: boolean }>;
  static restRpc(baseUrl: string, auth: RestAuth, exchange: string, routingKey: string, body: Body, options?: { timeout?: number; contentType?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: string }>;
  static httpBase(url: string): string;
}

export default Warren;
