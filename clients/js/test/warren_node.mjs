// Run by cmd/warren/ws_test.go (TestWarrenJSNode): warren.js under Node
// with the 'ws' package. Subscribes to amq.topic with "node.*", makes an
// RPC call, and reports every event as a JSON line; the Go test closes the
// connection from the server side to check reconnect and resubscribe.
//
//   node warren_node.mjs ws://127.0.0.1:15672/v1/ws
import WebSocket from "ws";
import { Warren } from "../warren.js";
import readline from "node:readline";

const [url] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const base = Warren.httpBase(url);

const w = new Warren(url, {
  WebSocket,
  minDelay: 50,
  maxDelay: 500,
  getToken: () => Warren.fetchToken(base, "guest", "guest", { ttlSeconds: 60 }),
});
w.on("open", (f) => say({ step: "open", user: f.user }));
w.on("close", (e) => say({ step: "close", code: e.code }));
w.on("error", (e) => say({ step: "error", message: String(e && e.message) }));

await w.connect();
const sub = await w.subscribe({ exchange: "amq.topic", bindingKey: "node.*" }, (m) => {
  say({ step: "message", routingKey: m.routingKey, body: m.text(), properties: m.properties });
});
say({ step: "subscribed", queue: sub.queue });

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    if (line === "rpc") {
      const r = await w.rpc("", "rpc_queue", "from node", { timeout: 5000 });
      say({ step: "reply", body: r.text() });
    } else if (line === "publish") {
      const r = await w.publish("amq.topic", "node.self", { n: 1 });
      say({ step: "published", routed: r.routed });
    } else if (line === "rest") {
      const r = await Warren.restPublish(base, { username: "guest", password: "guest" }, "amq.topic", "node.rest", "via rest");
      say({ step: "rest", routed: r.routed });
    } else if (line === "bye") {
      w.close();
      say({ step: "bye" });
      process.exit(0);
    }
  } catch (e) {
    say({ step: "failed", what: line, code: e.code, message: e.message });
  }
});
setTimeout(() => {
  say({ step: "timeout" });
  process.exit(3);
}, 60000).unref();
