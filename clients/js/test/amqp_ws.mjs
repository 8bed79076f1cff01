// AMQP 0-9-1 over WebSocket with @cloudamqp/amqp-client, run by
// cmd/warren/amqpws_test.go: node amqp_ws.mjs ws://host:port/ws/amqp
// Prints one JSON line per step; the Go test checks them.
import WebSocket from "ws"
import { AMQPWebSocketClient } from "@cloudamqp/amqp-client"

// Node 20 has no global WebSocket; the client uses the browser API, which
// the ws package provides.
globalThis.WebSocket ??= WebSocket

const out = (step, fields = {}) => console.log(JSON.stringify({ step, ...fields }))
const url = process.argv[2]

const client = new AMQPWebSocketClient({ url, vhost: "/", username: "guest", password: "guest", name: "amqp_ws.mjs" })
const conn = await client.connect()
out("connected", { channelMax: conn.channelMax, frameMax: conn.frameMax })

const ch = await conn.channel()
const q = await ch.queueDeclare("", { exclusive: true, autoDelete: false }) // outlives the consumer: counted below
await ch.queueBind(q.name, "amq.topic", "node.#")
await ch.confirmSelect()

const big = new Uint8Array(1 << 20)
for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff
const tags = await Promise.all([
  ch.basicPublish("amq.topic", "node.a", "hello", { contentType: "text/plain" }),
  ch.basicPublish("amq.topic", "node.big", big),
  ch.basicPublish("amq.topic", "node.b", "world"),
])
out("confirmed", { count: tags.length, tags })

const got = []
let done
const all = new Promise((resolve) => (done = resolve))
const consumer = await ch.basicConsume(q.name, { noAck: false }, async (msg) => {
  got.push(msg)
  await msg.ack()
  if (got.length === 3) done()
})
await all
const bigMsg = got.find((m) => m.routingKey === "node.big")
const bigOK = bigMsg !== undefined && bigMsg.body.length === big.length && bigMsg.body.every((b, i) => b === big[i])
out("received", { keys: got.map((m) => m.routingKey), sizes: got.map((m) => m.bodySize), bigOK })

// Closing the channel would requeue what it left unacked: the queue is
// empty only if every message was acked.
await consumer.cancel()
await ch.close()
const ch2 = await conn.channel()
const after = await ch2.queueDeclare(q.name, { passive: true })
out("acked", { remaining: after.messageCount })

let closeError = null
conn.onerror = (err) => (closeError = String(err))
await conn.close()
// Let the socket's close event run before reporting.
await new Promise((resolve) => setTimeout(resolve, 100))
out("closed", { error: closeError })
