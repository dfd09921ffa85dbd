// Baseline: a Node.js socket.io v4 server with the same routes as the Python bench servers.
//
//   node bench/baseline_node/server.js --port 8104
//
// Namespace /omni; every client joins room `user:bench` on connect; SESSAO_PING is answered with
// SESSAO_PONG. POST /emit?room=&ns= (alias /bench/emit) emits NOTIFICACAO_GERAL with the JSON body
// once to the room; GET /count (alias /bench/count) reports the live Engine.IO connections.
// No auth (the token is ignored). Exits when stdin closes (the runner went away) or after --max-seconds.
import { createServer } from "node:http";
import { Server } from "socket.io";

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const port = Number(option("--port", "8104"));
const maxSeconds = Number(option("--max-seconds", "3600"));
const heartbeatMs = Number(option("--heartbeat", "60")) * 1000;  // same interval on every bench server
const EVENT = "NOTIFICACAO_GERAL";

const http = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  const path = url.pathname.replace(/^\/bench/, "");
  if (req.method === "GET" && path === "/count") {
    const n = io.engine.clientsCount;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ raw: 0, eio: n, total: n }));
    return;
  }
  if (req.method === "POST" && path === "/emit") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let payload;
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400).end("bad json");
        return;
      }
      const room = url.searchParams.get("room") ?? "user:bench";
      const ns = url.searchParams.get("ns") ?? "/omni";
      io.of(ns).to(room).emit(EVENT, payload);
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
    return;
  }
  res.writeHead(404).end("not found");
});

const io = new Server(http, { serveClient: false, pingInterval: heartbeatMs, pingTimeout: 20000 });
io.of("/omni").on("connection", (socket) => {
  socket.join("user:bench");
  socket.on("SESSAO_PING", (data) => {
    const requestId = data && typeof data === "object" ? data.request_id ?? null : null;
    socket.emit("SESSAO_PONG", { request_id: requestId, server_time: new Date().toISOString() });
  });
});

http.listen({ port, host: "127.0.0.1", backlog: 4096 });

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
setTimeout(() => {
  process.stderr.write(`bench server: ${maxSeconds} s lifetime reached, exiting\n`);
  process.exit(0);
}, maxSeconds * 1000).unref();
