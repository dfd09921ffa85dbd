// The official socket.io-client, at its default reconnection, on /omni: for test_drain_reconnect.py.
//
//   NODE_PATH=tests/interop/node_modules node drain_client.cjs URL TOKEN TRANSPORT [DELAY_MS]
//
// DELAY_MS, when given, replaces the default backoff (1 s doubling to 5 s, ±50 %) by a fixed delay.
// The npm packages are tests/interop's (package.json and its lock pin them). One JSON line on stdout per
// thing that happens to the socket: {"event": "connect"}, {"event": "pong"} (each connect sends a
// SESSAO_PING), {"event": "disconnect", "reason"}, {"event": "connect_error", "message"}. Exits when stdin
// closes.
const { io } = require("socket.io-client");

const [url, token, transport, delayMs] = process.argv.slice(2);
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const backoff = delayMs ? { reconnectionDelay: Number(delayMs), reconnectionDelayMax: Number(delayMs),
                            randomizationFactor: 0 } : {};
const socket = io(url.replace(/\/$/, "") + "/omni", { transports: [transport], auth: { token }, ...backoff });

socket.on("connect", () => {
  print({ event: "connect", id: socket.id });
  socket.emit("SESSAO_PING", { request_id: "node" });
});
socket.on("SESSAO_PONG", () => print({ event: "pong" }));
socket.on("disconnect", (reason) => print({ event: "disconnect", reason }));
socket.on("connect_error", (err) => print({ event: "connect_error", message: err.message }));

process.stdin.on("end", () => {
  socket.disconnect();
  process.stdout.write("", () => process.exit(0));
});
process.stdin.resume();
