// Drives the official npm clients (socket.io-client v4, ws v8) against a running Ponte server.
//
//   node client.mjs URL TOKEN [omni]     Omni: /omni (Socket.IO) + /ws (raw), see test_interop.py
//   node client.mjs URL TOKEN chat SID   Cidadão chat: /chat (Socket.IO) + /api/v1/ws/chat/SID (raw);
//                                        TOKEN "-" connects anonymously
//
// Protocol on stdout, one line each: `READY` once every client is connected and in sync, then one
// JSON object per thing received. Diagnostics go to stderr. Exit 0 when everything expected has
// arrived; non-zero (with a message) on any error, an unexpected close, or after 15 s.
import { io } from "socket.io-client";
import WebSocket from "ws";

const TIMEOUT_MS = 15000;
const [url, tokenArg, mode = "omni", sessionId = "s1"] = process.argv.slice(2);
const sockets = [];
let finished = false;
if (!url || tokenArg === undefined) {
  fail("usage: node client.mjs URL TOKEN [omni | chat SESSION_ID]", 64);
}
const token = tokenArg === "-" || tokenArg === "" ? null : tokenArg;
const wsBase = url.replace(/^http/, "ws").replace(/\/$/, "");
const httpBase = url.replace(/\/$/, "");

const timer = setTimeout(() => fail(`timeout: ${TIMEOUT_MS / 1000} s elapsed, still waiting for ${pending()}`),
                         TIMEOUT_MS);

function fail(message, code = 1) {
  if (finished) return;
  finished = true;
  process.stderr.write(`client.mjs (${mode ?? "?"}): ERROR: ${message}\n`);
  closeAll();
  process.exit(code);
}

function print(obj) {
  process.stdout.write((typeof obj === "string" ? obj : JSON.stringify(obj)) + "\n");
}

function closeAll() {
  for (const s of sockets) {
    try {
      if (s instanceof WebSocket) s.terminate(); else s.disconnect();
    } catch { /* already gone */ }
  }
}

// Named steps the script waits on; `done(name)` marks one, and the process ends when all are done.
const steps = new Map();
function expect(...names) { for (const n of names) steps.set(n, false); }
function pending() { return [...steps].filter(([, v]) => !v).map(([k]) => k).join(", ") || "nothing"; }
function done(name) {
  if (finished || steps.get(name) !== false) return;
  steps.set(name, true);
  onStep(name);
  if ([...steps.values()].every(Boolean)) {
    finished = true;
    clearTimeout(timer);
    closeAll();
    // stdout is a pipe: let it flush before exiting.
    process.stdout.write("", () => process.exit(0));
  }
}
let onStep = () => {};

function sioSocket(namespace, options) {
  const socket = io(httpBase + namespace, { transports: ["websocket"], reconnection: false, forceNew: true,
                                            timeout: TIMEOUT_MS, ...options });
  sockets.push(socket);
  return socket;
}

function rawSocket(path, protocols) {
  // protocols ["bearer", TOKEN] is how a browser, which cannot set headers, sends its token.
  const ws = protocols ? new WebSocket(wsBase + path, protocols) : new WebSocket(wsBase + path);
  sockets.push(ws);
  path = path.split("?")[0]; // keep the token out of messages
  ws.on("error", (err) => fail(`ws ${path}: ${err.message}`));
  ws.on("close", (code, reason) => fail(`ws ${path} closed by the server: ${code} ${reason}`));
  ws.on("unexpected-response", (_req, res) => fail(`ws ${path}: HTTP ${res.statusCode} instead of an upgrade`));
  return ws;
}

function describe(err) {
  const cause = err.description?.message ?? err.description?.error?.message ?? "";
  return `${err.message}${cause ? ` (${cause})` : ""} ${JSON.stringify(err.data ?? null)}`;
}

function parse(text, where) {
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`${where}: not JSON: ${String(text).slice(0, 200)}`);
    return {};
  }
}

function omniMode() {
  if (!token) fail("omni mode needs a token");
  expect("socket.io:pong", "ws:pong", "socket.io-refused", "socket.io:notification", "ws:notification");
  let readyPrinted = false;
  onStep = () => {
    if (steps.get("socket.io:pong") && steps.get("ws:pong") && !readyPrinted) {
      readyPrinted = true;
      print("READY");
    }
  };

  const socket = sioSocket("/omni", { auth: { token } });
  socket.on("connect", () => socket.emit("SESSAO_PING", { request_id: "sio-sync" }));
  socket.on("connect_error", (err) => fail(`socket.io /omni connect_error: ${describe(err)}`));
  socket.on("disconnect", (reason) => fail(`socket.io /omni disconnected: ${reason}`));
  socket.on("ERRO", (data) => fail(`socket.io /omni ERRO: ${JSON.stringify(data)}`));
  socket.on("SESSAO_PONG", (data) => {
    if (data?.request_id === "sio-sync") done("socket.io:pong");
  });
  socket.on("NOTIFICACAO_GERAL", (data) => {
    if (!readyPrinted) fail("socket.io got NOTIFICACAO_GERAL before READY");
    print({ client: "socket.io", data });
    done("socket.io:notification");
  });

  const ws = rawSocket("/ws", ["bearer", token]);
  ws.on("open", () => { if (ws.protocol !== "bearer") fail(`server selected subprotocol ${ws.protocol}`); });
  ws.on("open", () => ws.send(JSON.stringify({ event: "SESSAO_PING", data: { request_id: "ws-sync" },
                                               timestamp: new Date().toISOString() })));
  ws.on("message", (raw) => {
    const envelope = parse(raw.toString(), "ws /ws");
    if (envelope.event === "ERRO") fail(`ws /ws ERRO: ${raw}`);
    else if (envelope.event === "SESSAO_PONG" && envelope.data?.request_id === "ws-sync") done("ws:pong");
    else if (envelope.event === "NOTIFICACAO_GERAL") {
      if (!readyPrinted) fail("ws got NOTIFICACAO_GERAL before READY");
      print({ client: "ws", envelope });
      done("ws:notification");
    }
  });

  // A second Socket.IO connection without a token must be refused at the namespace handshake.
  const refused = sioSocket("/omni", {});
  refused.on("connect", () => fail("socket.io /omni without a token was accepted"));
  refused.on("connect_error", (err) => {
    print({ client: "socket.io-refused", message: err.message, data: err.data ?? null });
    done("socket.io-refused");
  });
}

function chatMode() {
  // Both clients join session SID; each must be welcomed (`connection`, sent after joining the
  // session room) before the raw client types. The typing then crosses to the Socket.IO client,
  // and afterwards the Socket.IO client types and the raw client must get it.
  expect("socket.io:connection", "ws:connection", "socket.io:typing", "ws:typing");
  const auth = token ? { token, session_id: sessionId } : { session_id: sessionId };
  const socket = sioSocket("/chat", { auth });
  const ws = rawSocket(`/api/v1/ws/chat/${encodeURIComponent(sessionId)}` +
                       (token ? `?token=${encodeURIComponent(token)}` : ""));
  let rawTyped = false;
  let sioTyped = false;
  onStep = (name) => {
    if ((name === "socket.io:connection" || name === "ws:connection") &&
        steps.get("socket.io:connection") && steps.get("ws:connection")) {
      print("READY");
      rawTyped = true;
      ws.send(JSON.stringify({ type: "typing", data: { is_typing: true } }));
    } else if (name === "socket.io:typing") {
      sioTyped = true;
      socket.emit("typing", { agent: "socket.io-client", is_typing: true });
    }
  };

  socket.on("connection", (data) => {
    print({ client: "socket.io", event: "connection", data });
    done("socket.io:connection");
  });
  socket.on("connect_error", (err) => fail(`socket.io /chat connect_error: ${describe(err)}`));
  socket.on("disconnect", (reason) => fail(`socket.io /chat disconnected: ${reason}`));
  socket.on("error", (data) => fail(`socket.io /chat error event: ${JSON.stringify(data)}`));
  socket.on("typing", (data) => {
    if (!rawTyped) fail(`socket.io got typing before the raw client typed: ${JSON.stringify(data)}`);
    print({ client: "socket.io", event: "typing", data });
    done("socket.io:typing");
  });

  ws.on("message", (raw) => {
    const envelope = parse(raw.toString(), "ws chat");
    if (envelope.type === "connection") {
      print({ client: "ws", envelope });
      done("ws:connection");
    } else if (envelope.type === "typing") {
      if (!sioTyped) fail(`ws got typing before the Socket.IO client typed: ${raw}`);
      print({ client: "ws", envelope });
      done("ws:typing");
    } else if (envelope.type === "error") {
      fail(`ws chat error envelope: ${raw}`);
    }
  });
}

if (mode === "omni") omniMode();
else if (mode === "chat") chatMode();
else fail(`unknown mode ${mode}: expected omni or chat`, 64);
