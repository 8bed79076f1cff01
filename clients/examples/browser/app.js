// The example page: live messages from a topic exchange, publishing and
// an RPC form, all over one WebSocket with warren.js.
import { Warren } from "./warren.js";

const $ = (id) => document.getElementById(id);
let client = null;
let sub = null;

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = "status " + cls;
}

function enable(on) {
  for (const id of ["subscribe", "publish", "rpc", "disconnect"]) $(id).disabled = !on;
  $("connect").disabled = on;
}

function show(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

$("connect-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = $("user").value;
  const pass = $("pass").value;
  client = new Warren("/v1/ws", { getToken: () => Warren.fetchToken("", user, pass) });
  client.on("open", (w) => {
    setStatus("connected", "on");
    enable(true);
  });
  client.on("close", () => {
    setStatus("reconnecting", "wait");
    enable(false);
  });
  client.on("error", (e) => console.warn("warren:", e));
  setStatus("connecting", "wait");
  try {
    await client.connect();
  } catch (e) {
    setStatus("disconnected", "off");
    show($("sub-info"), "cannot connect: " + e.message, true);
  }
});

$("disconnect").addEventListener("click", () => {
  client?.close();
  client = null;
  sub = null;
  enable(false);
  setStatus("disconnected", "off");
});

$("sub-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (sub) await sub.unsubscribe();
  const exchange = $("sub-exchange").value;
  const bindingKey = $("sub-key").value;
  try {
    sub = await client.subscribe({ exchange, bindingKey }, (m) => {
      const li = document.createElement("li");
      const key = document.createElement("span");
      key.className = "key";
      key.textContent = m.routingKey;
      li.append(key, m.text());
      $("messages").prepend(li);
    });
    show($("sub-info"), `subscribed to ${exchange} with "${bindingKey}" (queue ${sub.queue})`);
  } catch (e) {
    show($("sub-info"), e.message, true);
  }
});

$("pub-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await client.publish($("pub-exchange").value, $("pub-key").value, $("pub-body").value);
    show($("pub-result"), r.routed ? "published" : "published, but no queue was bound");
  } catch (e) {
    show($("pub-result"), e.message, true);
  }
});

$("rpc-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  show($("rpc-result"), "waiting...");
  try {
    const reply = await client.rpc($("rpc-exchange").value, $("rpc-key").value, $("rpc-body").value, { timeout: 10000 });
    show($("rpc-result"), reply.text());
  } catch (e) {
    show($("rpc-result"), `error ${e.code}: ${e.message}`, true);
  }
});
