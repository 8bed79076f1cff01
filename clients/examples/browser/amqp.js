// AMQP 0-9-1 over WebSocket with @cloudamqp/amqp-client: connect, declare
// an exclusive queue, bind it, consume with manual acks, publish with
// publisher confirms, close cleanly.
import { AMQPWebSocketClient } from "./vendor/amqp-client.js";

const $ = (id) => document.getElementById(id);
let conn = null;
let channel = null; // for consuming
let pubChannel = null; // in confirm mode
let consumer = null;

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = "status " + cls;
}

function enable(on) {
  for (const id of ["subscribe", "publish", "disconnect"]) $(id).disabled = !on;
  $("connect").disabled = on;
}

function show(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

function wsURL() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return scheme + "//" + location.host + "/ws/amqp";
}

$("connect-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  setStatus("connecting", "wait");
  const client = new AMQPWebSocketClient({
    url: wsURL(),
    vhost: $("vhost").value,
    username: $("user").value,
    password: $("pass").value,
    name: "AMQP example page",
  });
  client.onerror = (err) => {
    setStatus("closed: " + err.message, "off");
    enable(false);
  };
  try {
    conn = await client.connect();
    channel = await conn.channel();
    pubChannel = await conn.channel();
    await pubChannel.confirmSelect();
    setStatus("connected", "on");
    enable(true);
  } catch (err) {
    setStatus("failed: " + err.message, "off");
  }
});

$("disconnect").addEventListener("click", async () => {
  enable(false);
  $("connect").disabled = true;
  try {
    await conn.close();
    setStatus("closed", "off");
  } catch (err) {
    setStatus("close failed: " + err.message, "off");
  }
  conn = channel = pubChannel = consumer = null;
  $("connect").disabled = false;
});

$("sub-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const exchange = $("sub-exchange").value;
  const key = $("sub-key").value;
  try {
    if (consumer) await consumer.cancel();
    const q = await channel.queueDeclare("", { exclusive: true });
    await channel.queueBind(q.name, exchange, key);
    consumer = await channel.basicConsume(q.name, { noAck: false }, async (msg) => {
      const li = document.createElement("li");
      const k = document.createElement("span");
      k.className = "key";
      k.textContent = msg.routingKey;
      const size = msg.bodySize;
      const text = size > 200 ? `${size} bytes` : msg.bodyToString();
      li.append(k, text);
      $("messages").prepend(li);
      await msg.ack(); // acknowledged once shown
    });
    show($("sub-info"), `consuming from ${q.name}, bound to ${exchange} with ${key}`);
  } catch (err) {
    show($("sub-info"), err.message, true);
  }
});

let published = 0;
$("pub-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const size = Number($("pub-size").value) || 0;
  let body = $("pub-body").value;
  if (size > 0) {
    body = new Uint8Array(size);
    for (let i = 0; i < size; i++) body[i] = i & 0xff;
  }
  try {
    // In confirm mode basicPublish resolves when the broker confirmed it.
    const tag = await pubChannel.basicPublish($("pub-exchange").value, $("pub-key").value, body);
    published++;
    show($("pub-result"), `confirmed: publish #${tag} (${published} so far)`);
  } catch (err) {
    show($("pub-result"), err.message, true);
  }
});
