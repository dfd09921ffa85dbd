// One official socket.io-client socket, driven line by line on stdin, for the connection-state recovery
// tests (test_recovery_interop.py):
//
//   node recovery.mjs URL TOKEN NAMESPACE RECONNECTION_DELAY_MS
//
// The socket reconnects by itself after exactly RECONNECTION_DELAY_MS (randomizationFactor 0), so the
// test knows how long it stays away. Commands, one per line on stdin:
//   drop              close the transport under the client (socket.io.engine.close()): it reconnects
//   switch URL        reconnect to URL instead (as a load balancer sending it elsewhere), then drop
//   emit EVENT JSON   emit EVENT with the JSON data
//   exit              disconnect and exit 0
// Output on stdout, one JSON line each: {"type":"connect","recovered":…,"id":…},
// {"type":"disconnect","reason":…}, {"type":"connect_error","message":…,"data":…},
// {"type":"event","event":…,"args":[…]} (the offset, when the server sends one, is the last argument).
// Diagnostics go to stderr; the process gives up with exit 1 after 30 s.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const TIMEOUT_MS = 30000;
const [url, token, namespace = "/omni", delayArg = "1000"] = process.argv.slice(2);
if (!url || !token) {
  process.stderr.write("usage: node recovery.mjs URL TOKEN NAMESPACE RECONNECTION_DELAY_MS\n");
  process.exit(64);
}
const delay = Number(delayArg);
const timer = setTimeout(() => {
  process.stderr.write(`recovery.mjs: timeout: ${TIMEOUT_MS / 1000} s elapsed\n`);
  process.exit(1);
}, TIMEOUT_MS);

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const socket = io(url.replace(/\/$/, "") + namespace, {
  transports: ["websocket"], forceNew: true, auth: { token },
  reconnectionDelay: delay, reconnectionDelayMax: delay, randomizationFactor: 0,
});
socket.on("connect", () => print({ type: "connect", recovered: socket.recovered, id: socket.id }));
socket.on("disconnect", (reason) => print({ type: "disconnect", reason }));
socket.on("connect_error", (err) => print({ type: "connect_error", message: err.message, data: err.data ?? null }));
socket.onAny((event, ...args) => print({ type: "event", event, args }));

function finish() {
  clearTimeout(timer);
  socket.disconnect();
  process.stdout.write("", () => process.exit(0));
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const [command, ...rest] = line.trim().split(" ");
  if (command === "drop") {
    socket.io.engine.close();
  } else if (command === "switch") {
    socket.io.uri = rest[0];
    socket.io.engine.close();
  } else if (command === "emit") {
    socket.emit(rest[0], JSON.parse(rest.slice(1).join(" ") || "null"));
  } else if (command === "exit") {
    finish();
  } else {
    process.stderr.write(`recovery.mjs: unknown command ${JSON.stringify(line)}\n`);
    process.exit(64);
  }
});
lines.on("close", finish);
