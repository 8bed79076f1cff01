// Run by cmd/warren/stomp_test.go: @stomp/stompjs, unchanged, against
// Warren's /ws. Subscribes to /exchange/amq.topic/kern.* with
// client-individual acks, prints each step as a JSON line on stdout, acks
// the message, and exits when stdin says "bye".
//
//   node stomp_amqp.mjs ws://127.0.0.1:15674/ws guest guest
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
import readline from "node:readline";

const [url, login, passcode] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const client = new Client({
  webSocketFactory: () => new WebSocket(url, ["v12.stomp", "v11.stomp", "v10.stomp"]),
  connectHeaders: { login, passcode },
  reconnectDelay: 0,
  heartbeatIncoming: 4000,
  heartbeatOutgoing: 4000,
  debug: (s) => process.stderr.write(s + "\n"),
});

client.onConnect = (frame) => {
  say({ step: "connected", version: frame.headers.version, server: frame.headers.server, heartBeat: frame.headers["heart-beat"] });
  client.watchForReceipt("sub-1", () => say({ step: "subscribed" }));
  client.subscribe(
    "/exchange/amq.topic/kern.*",
    (m) => {
      say({ step: "message", destination: m.headers.destination, body: m.body, headers: m.headers });
      m.ack();
      // A receipt for a frame sent after the ACK proves the ACK was handled.
      client.watchForReceipt("after-ack", () => say({ step: "acked" }));
      client.publish({ destination: "/topic/acks", body: "done", headers: { receipt: "after-ack" } });
    },
    { id: "sub-0", ack: "client-individual", receipt: "sub-1" },
  );
};
client.onStompError = (f) => {
  say({ step: "error", message: f.headers.message, body: f.body });
  process.exit(2);
};
client.onWebSocketClose = (e) => say({ step: "closed", code: e.code });

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line.trim() === "bye") {
    await client.deactivate();
    say({ step: "bye" });
    process.exit(0);
  }
});
client.activate();
setTimeout(() => {
  say({ step: "timeout" });
  process.exit(3);
}, 30000).unref();
