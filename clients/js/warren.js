// warren.js: a client for Warren's WebSocket JSON protocol (/v1/ws) and
// its REST helpers, for browsers and Node >= 20. An ES module with no
// dependencies and no build step. See README.md and warren.d.ts.
//
//   import { Warren } from "./warren.js";
//   const w = new Warren("/v1/ws", { getToken: () => Warren.fetchToken("", "guest", "guest") });
//   await w.connect();
//   await w.subscribe({ exchange: "amq.topic", bindingKey: "kern.*" }, (m) => console.log(m.routingKey, m.body));
//   const reply = await w.rpc("", "rpc_queue", "30", { timeout: 5000 });

const PROTOCOL = "warren.v1";

// Close codes after which reconnecting unchanged cannot help.
const FATAL_CLOSE = new Set([4002, 4003, 1002, 1003, 1007, 1009]);
const AUTH_CLOSE = 4001;

/** An error frame from the server (or a local failure, code 0/503). */
export class WarrenError extends Error {
  constructor(code, error, message) {
    super(message);
    this.name = "WarrenError";
    this.code = code;
    this.error = error;
  }
}

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// encodeBody turns a string, bytes or a JSON value into payload fields.
function encodeBody(body, properties) {
  if (typeof body === "string") return { payload: body, payload_encoding: "string", properties };
  if (body instanceof ArrayBuffer) body = new Uint8Array(body);
  if (ArrayBuffer.isView(body)) {
    const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return { payload: toBase64(bytes), payload_encoding: "base64", properties };
  }
  if (body === undefined || body === null) return { payload: "", payload_encoding: "string", properties };
  const props = Object.assign({ content_type: "application/json" }, properties || {});
  return { payload: JSON.stringify(body), payload_encoding: "string", properties: props };
}

function httpBase(url) {
  const u = new URL(url, typeof location !== "undefined" ? location.href : undefined);
  u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
  u.pathname = "/";
  u.search = "";
  u.hash = "";
  return u.toString().replace(/\/$/, "");
}

function wsURL(url) {
  const u = new URL(url, typeof location !== "undefined" ? location.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  return u;
}

/** A received message (for subscriptions and RPC replies). */
export class Message {
  constructor(client, f) {
    this._client = client;
    this.subscription = f.subscription;
    this.deliveryTag = f.delivery_tag;
    this.redelivered = !!f.redelivered;
    this.exchange = f.exchange;
    this.routingKey = f.routing_key;
    this.properties = f.properties || {};
    this.body = f.payload_encoding === "base64" ? fromBase64(f.payload || "") : f.payload ?? "";
    this._settled = false;
    this._epoch = client ? client._epoch : 0;
  }
  /** The body as text (bytes are decoded as UTF-8). */
  text() {
    return typeof this.body === "string" ? this.body : new TextDecoder().decode(this.body);
  }
  /** The body parsed as JSON. */
  json() {
    return JSON.parse(this.text());
  }
  ack(opts) {
    return this._client.ack(this, opts);
  }
  nack(opts) {
    return this._client.nack(this, opts);
  }
  reject(opts) {
    return this._client.reject(this, opts);
  }
}

/**
 * Warren is one connection to /v1/ws that reconnects by itself (backoff
 * with jitter) and subscribes again after a reconnect.
 */
export class Warren {
  constructor(url = "/v1/ws", options = {}) {
    this.url = url;
    this.options = Object.assign(
      { reconnect: true, minDelay: 250, maxDelay: 30000, vhost: undefined },
      options,
    );
    this._WS = options.WebSocket || globalThis.WebSocket;
    if (!this._WS) throw new Error("no WebSocket implementation: pass options.WebSocket (for example the 'ws' package)");
    this._nextId = 1;
    this._nextSub = 1;
    this._pending = new Map(); // id -> {resolve, reject}
    this._subs = new Map(); // subscription id -> {source, handler, opts, queue}
    this._listeners = new Map();
    this._ws = null;
    this._open = false;
    this._closed = false;
    this._attempt = 0;
    this._epoch = 0;
    this._flowActive = true;
    this._flowWaiters = [];
    this._readyWaiters = [];
    this.welcome = null;
  }

  /** on("open" | "close" | "error" | "flow" | "reconnecting", fn) */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  _emit(event, arg) {
    for (const fn of this._listeners.get(event) || []) {
      try {
        fn(arg);
      } catch (e) {
        console.error(e);
      }
    }
  }

  /** Opens the connection; resolves with the welcome frame. */
  connect() {
    this._closed = false;
    if (this._open) return Promise.resolve(this.welcome);
    const p = new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
    if (!this._ws) this._dial();
    return p;
  }

  /** Closes for good (no reconnect). Pending requests fail. */
  close() {
    this._closed = true;
    clearTimeout(this._timer);
    if (this._ws) this._ws.close(1000);
    this._failPending(new WarrenError(0, "closed", "the client was closed"));
  }

  get connected() {
    return this._open;
  }

  async _dial() {
    clearTimeout(this._timer);
    const u = wsURL(this.url);
    let auth = null;
    try {
      if (this.options.getToken) {
        u.searchParams.set("token", await this.options.getToken());
      } else if (this.options.token) {
        u.searchParams.set("token", this.options.token);
      } else if (this.options.username !== undefined) {
        auth = { op: "auth", username: this.options.username, password: this.options.password || "" };
      }
    } catch (e) {
      this._emit("error", e);
      this._scheduleReconnect(e);
      return;
    }
    if (this._closed) return;
    if (this.options.vhost) {
      if (auth) auth.vhost = this.options.vhost;
      else u.searchParams.set("vhost", this.options.vhost);
    }
    const ws = new this._WS(u.toString(), [PROTOCOL]);
    this._ws = ws;
    ws.onopen = () => {
      if (auth) ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => this._onClose(ws, ev);
  }

  _onClose(ws, ev) {
    if (ws !== this._ws) return;
    this._ws = null;
    const was = this._open;
    this._open = false;
    this._epoch++;
    const err = new WarrenError(ev.code, "closed", `connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
    this._failPending(err);
    this._setFlow(true);
    this._emit("close", { code: ev.code, reason: ev.reason, wasOpen: was });
    const canAuthAgain = this.options.getToken || this.options.username !== undefined;
    if (this._closed || !this.options.reconnect || FATAL_CLOSE.has(ev.code) || (ev.code === AUTH_CLOSE && !canAuthAgain)) {
      for (const w of this._readyWaiters.splice(0)) w.reject(err);
      return;
    }
    this._scheduleReconnect(err);
  }

  _scheduleReconnect(err) {
    if (this._closed || !this.options.reconnect) {
      for (const w of this._readyWaiters.splice(0)) w.reject(err);
      return;
    }
    const { minDelay, maxDelay } = this.options;
    const base = Math.min(maxDelay, minDelay * 2 ** Math.min(this._attempt, 16));
    const delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
    this._attempt++;
    this._emit("reconnecting", { attempt: this._attempt, delay, error: err });
    this._timer = setTimeout(() => this._dial(), delay);
  }

  _failPending(err) {
    for (const [, p] of this._pending) p.reject(err);
    this._pending.clear();
  }

  _onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    switch (f.op) {
      case "welcome":
        this.welcome = f;
        this._open = true;
        this._attempt = 0;
        this._resubscribe();
        this._emit("open", f);
        for (const w of this._readyWaiters.splice(0)) w.resolve(f);
        return;
      case "message": {
        const s = this._subs.get(f.subscription);
        if (!s) return;
        const m = new Message(this, f);
        try {
          const r = s.handler(m);
          if (r && typeof r.catch === "function") r.catch((e) => this._emit("error", e));
        } catch (e) {
          this._emit("error", e);
        }
        return;
      }
      case "reply":
      case "ok": {
        const p = this._pending.get(f.id);
        if (!p) return;
        this._pending.delete(f.id);
        p.resolve(f.op === "reply" ? new Message(this, f) : f);
        return;
      }
      case "error": {
        const e = new WarrenError(f.code, f.error, f.message);
        const p = f.id !== undefined ? this._pending.get(f.id) : null;
        if (p) {
          this._pending.delete(f.id);
          p.reject(e);
        } else {
          this._emit("error", e);
        }
        return;
      }
      case "cancelled": {
        const s = this._subs.get(f.subscription);
        this._subs.delete(f.subscription);
        if (s && s.onCancel) s.onCancel(f.reason);
        this._emit("error", new WarrenError(404, "cancelled", f.reason));
        return;
      }
      case "flow":
        this._setFlow(!!f.active);
        this._emit("flow", !!f.active);
        return;
    }
  }

  _setFlow(active) {
    this._flowActive = active;
    if (active) for (const w of this._flowWaiters.splice(0)) w();
  }

  async _ready() {
    if (!this._open) {
      if (this._closed) throw new WarrenError(0, "closed", "the client was closed");
      await new Promise((resolve, reject) => {
        this._readyWaiters.push({ resolve, reject });
      });
    }
    while (!this._flowActive) await new Promise((r) => this._flowWaiters.push(r));
  }

  /** Sends a request and resolves with its ok (or reply) frame. */
  async request(frame) {
    await this._ready();
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this._ws.send(JSON.stringify(Object.assign({}, frame, { id })));
    });
  }

  /** Publishes; resolves with {routed} once every target queue stored it. */
  async publish(exchange, routingKey, body, options = {}) {
    const f = await this.request(
      Object.assign({ op: "publish", exchange: exchange || "", routing_key: routingKey || "" }, encodeBody(body, options.properties)),
    );
    return { routed: f.routed };
  }

  /**
   * Subscribes to a queue ("name" or {queue}) or to an exchange with a
   * binding key ({exchange, bindingKey, arguments}). handler(message) is
   * called for each message; with ack "client" call message.ack().
   */
  async subscribe(source, handler, options = {}) {
    if (typeof source === "string") source = { queue: source };
    const id = options.id || `s${this._nextSub++}`;
    const s = { id, source, handler, options, queue: undefined, onCancel: options.onCancel };
    this._subs.set(id, s);
    try {
      await this._subscribeFrame(s);
    } catch (e) {
      this._subs.delete(id);
      throw e;
    }
    const client = this;
    return {
      id,
      get queue() {
        return s.queue;
      },
      unsubscribe: () => client.unsubscribe(id),
    };
  }

  _subscribeFrame(s) {
    const f = { op: "subscribe", subscription: s.id };
    if (s.source.queue) f.queue = s.source.queue;
    else {
      f.exchange = s.source.exchange;
      f.binding_key = s.source.bindingKey ?? s.source.binding_key ?? "";
      if (s.source.arguments) f.arguments = s.source.arguments;
    }
    if (s.options.prefetch !== undefined) f.prefetch = s.options.prefetch;
    if (s.options.ack) f.ack = s.options.ack;
    return this.request(f).then((ok) => {
      s.queue = ok.queue;
      s.live = true;
      return ok;
    });
  }

  _resubscribe() {
    for (const s of this._subs.values()) {
      if (!s.live) continue; // its first subscribe is still waiting to be sent
      // Sent straight away: the connection is open (welcome just came).
      const id = this._nextId++;
      const f = { op: "subscribe", subscription: s.id, id };
      if (s.source.queue) f.queue = s.source.queue;
      else {
        f.exchange = s.source.exchange;
        f.binding_key = s.source.bindingKey ?? s.source.binding_key ?? "";
        if (s.source.arguments) f.arguments = s.source.arguments;
      }
      if (s.options.prefetch !== undefined) f.prefetch = s.options.prefetch;
      if (s.options.ack) f.ack = s.options.ack;
      this._pending.set(id, {
        resolve: (ok) => (s.queue = ok.queue),
        reject: (e) => this._emit("error", e),
      });
      this._ws.send(JSON.stringify(f));
    }
  }

  async unsubscribe(id) {
    const s = this._subs.get(id);
    this._subs.delete(id);
    if (!s || !this._open) return;
    await this.request({ op: "unsubscribe", subscription: id });
  }

  _settle(op, m, extra) {
    if (m._epoch !== this._epoch) {
      // Delivered on an earlier connection: the server requeued it.
      return Promise.resolve();
    }
    return this.request(Object.assign({ op, subscription: m.subscription, delivery_tag: m.deliveryTag }, extra));
  }

  ack(m, { multiple = false } = {}) {
    return this._settle("ack", m, { multiple });
  }

  nack(m, { multiple = false, requeue = true } = {}) {
    return this._settle("nack", m, { multiple, requeue });
  }

  reject(m, { requeue = false } = {}) {
    return this._settle("reject", m, { requeue });
  }

  /** Sends a request and resolves with the reply Message. */
  rpc(exchange, routingKey, body, options = {}) {
    const f = Object.assign({ op: "rpc", exchange: exchange || "", routing_key: routingKey }, encodeBody(body, options.properties));
    if (options.timeout) f.timeout_ms = options.timeout;
    return this.request(f);
  }

  declareQueue(name = "", options = {}) {
    return this.request({
      op: "declare_queue",
      queue: name,
      durable: !!options.durable,
      exclusive: !!options.exclusive,
      auto_delete: !!options.autoDelete,
      passive: !!options.passive,
      arguments: options.arguments,
    });
  }

  declareExchange(name, type = "direct", options = {}) {
    return this.request({
      op: "declare_exchange",
      exchange: name,
      type,
      durable: !!options.durable,
      auto_delete: !!options.autoDelete,
      internal: !!options.internal,
      passive: !!options.passive,
      arguments: options.arguments,
    });
  }

  bind(queue, exchange, routingKey = "", args) {
    return this.request({ op: "bind", queue, exchange, routing_key: routingKey, arguments: args });
  }

  unbind(queue, exchange, routingKey = "", args) {
    return this.request({ op: "unbind", queue, exchange, routing_key: routingKey, arguments: args });
  }

  deleteQueue(name, options = {}) {
    return this.request({ op: "delete_queue", queue: name, if_unused: !!options.ifUnused, if_empty: !!options.ifEmpty });
  }

  // ---- REST helpers (HTTP basic auth) ----

  /** POST /v1/tokens: a short-lived token for WebSocket logins. */
  static async fetchToken(baseUrl, username, password, { ttlSeconds } = {}) {
    const res = await fetch(`${baseUrl || ""}/v1/tokens`, {
      method: "POST",
      headers: { Authorization: "Basic " + btoa(`${username}:${password}`), "Content-Type": "application/json" },
      body: ttlSeconds ? JSON.stringify({ ttl_seconds: ttlSeconds }) : "",
    });
    const j = await res.json().catch(() => ({}));
    if (!res.ok) throw new WarrenError(res.status, j.error || "http_error", j.reason || res.statusText);
    return j.token;
  }

  /** POST /v1/publish/{exchange}/{routing_key}: resolves with {routed}. */
  static async restPublish(baseUrl, auth, exchange, routingKey, body, { contentType, headers = {} } = {}) {
    const res = await fetch(`${baseUrl || ""}/v1/publish/${encodeURIComponent(exchange || "amq.default")}/${encodeURIComponent(routingKey)}`, {
      method: "POST",
      headers: Object.assign(restHeaders(auth, body, contentType), headers),
      body: restBody(body),
    });
    return restResult(res, () => res.json());
  }

  /** POST /v1/rpc/{exchange}/{routing_key}: resolves with {status, headers, body}. */
  static async restRpc(baseUrl, auth, exchange, routingKey, body, { timeout, contentType, headers = {} } = {}) {
    const q = timeout ? `?timeout=${timeout}ms` : "";
    const res = await fetch(`${baseUrl || ""}/v1/rpc/${encodeURIComponent(exchange || "amq.default")}/${encodeURIComponent(routingKey)}${q}`, {
      method: "POST",
      headers: Object.assign(restHeaders(auth, body, contentType), headers),
      body: restBody(body),
    });
    return restResult(res, async () => ({ status: res.status, headers: res.headers, body: await res.text() }));
  }

  /** The http(s) base URL of a ws(s) URL. */
  static httpBase(url) {
    return httpBase(url);
  }
}

function restHeaders(auth, body, contentType) {
  const h = {};
  if (auth && auth.username !== undefined) h.Authorization = "Basic " + btoa(`${auth.username}:${auth.password || ""}`);
  if (contentType) h["Content-Type"] = contentType;
  else if (typeof body === "string") h["Content-Type"] = "text/plain";
  else if (!(body instanceof ArrayBuffer) && !ArrayBuffer.isView(body)) h["Content-Type"] = "application/json";
  else h["Content-Type"] = "application/octet-stream";
  return h;
}

function restBody(body) {
  if (typeof body === "string" || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body;
  return JSON.stringify(body);
}

async function restResult(res, ok) {
  if (res.ok) return ok();
  const j = await res.json().catch(() => ({}));
  throw new WarrenError(res.status, j.error || "http_error", j.reason || res.statusText);
}

export default Warren;
