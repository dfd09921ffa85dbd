// One connection to one endpoint, over the raw WebSocket (the documented envelopes) or Socket.IO, with
// the same small interface: on(event, fn), send(event, data), ready(), close(), and a status that says
// connecting / open / reconnecting / refused / closed. Every frame goes to the frames panel.
import { io } from "../vendor/socket.io.esm.min.js";
import { showStatus } from "./dom.js";

const FINAL_CLOSE = new Set([1008]); // policy: bad token, not found, abuse: reconnecting would not help
const MAX_BACKOFF = 10000;

function errorText(data) {
  return data?.mensagem || data?.message || data?.code || data?.codigo || "";
}

export class Channel {
  constructor({ protocol, transport, token, params, frames }) {
    Object.assign(this, { protocol, transport, token, params, frames });
    this.where = transport === "raw" ? `raw ${protocol.raw_path}` : `sio ${protocol.namespace}`;
    this.handlers = new Set();
    this.statusHandlers = new Set();
    this.status = { state: "connecting", text: "connecting…" };
    this.closed = false;
    this.attempt = 0;
    this.recovery = {};
    transport === "raw" ? this.openRaw() : this.openSocketIO();
  }

  on(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }

  onStatus(fn) { this.statusHandlers.add(fn); fn(this.status); return () => this.statusHandlers.delete(fn); }

  setStatus(state, text) {
    this.status = { state, text };
    this.statusHandlers.forEach((fn) => fn(this.status));
  }

  dispatch(event, data, whole) {
    this.frames.add("in", this.where, event, whole);
    if (event === "ERRO" || event === "error") this.lastError = errorText(data);
    this.handlers.forEach((fn) => fn(event, data));
  }

  // Resolves once open; rejects when refused, closed, or not open within `ms`.
  ready(ms = 10000) {
    if (this.status.state === "open") return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { off(); reject(new Error("not connected after " + ms / 1000 + " s")); }, ms);
      const off = this.onStatus((s) => {
        if (s.state === "open") { clearTimeout(timer); off(); resolve(this); }
        if (s.state === "refused" || s.state === "closed") { clearTimeout(timer); off(); reject(new Error(s.text)); }
      });
    });
  }

  send(event, data) {
    if (this.status.state !== "open") throw new Error("not connected: " + this.status.text);
    if (this.transport === "raw") {
      const envelope = { [this.protocol.envelope]: event, data };
      this.ws.send(JSON.stringify(envelope));
      this.frames.add("out", this.where, event, envelope);
    } else {
      this.socket.emit(event, data);
      this.frames.add("out", this.where, event, data);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.ws) this.ws.close(1000, "console: closed");
    if (this.socket) this.socket.disconnect();
    this.setStatus("closed", "closed");
  }

  // -- raw WebSocket ---------------------------------------------------------------------------

  rawUrl() {
    const path = this.protocol.raw_path.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(this.params[name] ?? ""));
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (this.recovery.pid && this.recovery.offset) { // where this client stands: no secret, only ids
      url.searchParams.set("pid", this.recovery.pid);
      url.searchParams.set("since", this.recovery.offset);
    }
    return url.href;
  }

  openRaw() {
    const ws = this.ws = new WebSocket(this.rawUrl(), this.token ? ["bearer", this.token] : []);
    ws.onopen = () => {
      this.attempt = 0;
      this.lastError = "";
      this.frames.add("sys", this.where, "open", { url: this.rawUrl().split("?")[0] });
      this.setStatus("open", `connected · raw ${this.protocol.raw_path}`);
    };
    ws.onmessage = (message) => {
      let parsed;
      try { parsed = JSON.parse(message.data); } catch { parsed = { event: "(not JSON)", data: message.data }; }
      if (parsed.recovery?.pid) this.recovery.pid = parsed.recovery.pid;
      if (parsed.offset) this.recovery.offset = parsed.offset;
      this.dispatch(parsed[this.protocol.envelope] ?? parsed.event ?? parsed.type, parsed.data ?? {}, parsed);
    };
    ws.onclose = (event) => {
      this.frames.add("sys", this.where, "close", { code: event.code, reason: event.reason });
      if (this.closed) return;
      if (FINAL_CLOSE.has(event.code)) {
        this.setStatus("refused", `refused (${event.code}): ${this.lastError || event.reason || "policy"}`);
        return;
      }
      this.attempt += 1;
      const wait = Math.min(MAX_BACKOFF, 500 * 2 ** (this.attempt - 1));
      this.setStatus("reconnecting", `connection lost (${event.code || "no code"}): reconnecting, attempt ${this.attempt} in ${(wait / 1000).toFixed(1)} s…`);
      this.retry = setTimeout(() => { if (!this.closed) this.openRaw(); }, wait);
    };
  }

  // -- Socket.IO -------------------------------------------------------------------------------

  openSocketIO() {
    const auth = { ...this.params, offsets: true };
    if (this.token) auth.token = this.token;
    const socket = this.socket = io(this.protocol.namespace, {
      auth, transports: ["websocket"], forceNew: true, reconnectionDelayMax: MAX_BACKOFF,
    });
    socket.on("connect", () => {
      this.frames.add("sys", this.where, "connect", { id: socket.id, recovered: socket.recovered });
      this.setStatus("open", `connected · Socket.IO ${this.protocol.namespace}${socket.recovered ? " (recovered)" : ""}`);
    });
    socket.on("connect_error", (error) => {
      this.frames.add("sys", this.where, "connect_error", { message: error.message, data: error.data });
      if (socket.active) this.setStatus("reconnecting", `cannot connect (${error.message}): retrying…`);
      else this.setStatus("refused", `refused: ${error.message}${error.data?.code ? " (" + error.data.code + ")" : ""}`);
    });
    socket.on("disconnect", (reason) => {
      this.frames.add("sys", this.where, "disconnect", { reason });
      if (this.closed) return;
      if (socket.active) this.setStatus("reconnecting", `connection lost (${reason}): reconnecting…`);
      else this.setStatus("refused", `disconnected by the server (${reason})${this.lastError ? ": " + this.lastError : ""}`);
    });
    socket.io.on("reconnect_attempt", (n) => this.setStatus("reconnecting", `connection lost: reconnecting, attempt ${n}…`));
    socket.onAny((event, ...args) => {
      // with auth.offsets the server adds each room event's offset as a last argument
      const whole = args.length > 1 ? { data: args[0], offset: args[args.length - 1] } : args[0];
      this.dispatch(event, args[0] ?? {}, whole);
    });
  }
}

// What a view holds: the connection to one endpoint, reopened when the transport or the token changes.
export class Link {
  constructor(ctx, namespace, statusNode, onEvent) {
    Object.assign(this, { ctx, namespace, statusNode, onEvent });
    this.channel = null;
    this.params = {};
    ctx.links.add(this);
  }

  open(params = this.params) {
    const key = JSON.stringify([this.ctx.transport, this.ctx.auth.token, params]);
    if (this.channel && this.key === key && !this.channel.closed) return this.channel;
    this.close();
    this.key = key;
    this.params = params;
    const protocol = this.ctx.protocol(this.namespace);
    this.channel = new Channel({ protocol, transport: this.ctx.transport, token: this.ctx.auth.token, params,
                                 frames: this.ctx.frames });
    this.channel.on(this.onEvent);
    this.channel.onStatus((status) => {
      showStatus(this.statusNode, status);
      this.ctx.connectionStatus(this.namespace, status);
    });
    return this.channel;
  }

  async send(event, data, params = this.params) {
    const channel = await this.open(params).ready();
    channel.send(event, data);
  }

  get isOpen() { return Boolean(this.channel && !this.channel.closed); }

  restart() { if (this.isOpen) { const params = this.params; this.close(); this.open(params); } }

  close() {
    if (this.channel) this.channel.close();
    this.channel = null;
  }
}
