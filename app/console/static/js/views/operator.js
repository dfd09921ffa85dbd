// Operator: GET /api/v1/admin/overview (admin scope), refreshed every few seconds while shown.
import { $, clear, el, pretty } from "../dom.js";

const EVERY = 2000;

function table(headers, rows) {
  if (!rows.length) return el("p", { class: "muted", text: "none" });
  return el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", { text: c ?? "—" })))))));
}

function card(label, value, cls = "") {
  return el("div", { class: "card" }, el("div", { class: "muted", text: label }), el("div", { class: "big " + cls, text: String(value) }));
}

export class OperatorView {
  constructor(ctx) {
    this.ctx = ctx;
    this.visible = false;
    $("op-live").addEventListener("change", () => this.tick());
    ctx.auth.onChange(() => this.tick());
  }

  show(visible) {
    this.visible = visible;
    this.tick();
  }

  async tick() {
    clearTimeout(this.timer);
    if (!this.visible) return;
    const status = $("op-status");
    if (!this.ctx.auth.token || !this.ctx.auth.scopes.includes("admin")) {
      clear($("op-body"), el("p", { class: "error", role: "alert", text: "The operator view needs a token with the admin scope (a development token: tick “admin”)." }));
      status.textContent = "";
      return;
    }
    try {
      const response = await fetch("/api/v1/admin/overview", { headers: this.ctx.auth.headers() });
      const body = await response.json();
      if (!response.ok) throw new Error(`${response.status} ${body.error?.message || ""}`);
      this.render(body);
      status.textContent = "updated " + new Date().toLocaleTimeString();
      status.className = "status ok";
    } catch (error) {
      status.textContent = "cannot read the overview: " + error.message;
      status.className = "status bad";
    }
    if ($("op-live").checked && this.visible) this.timer = setTimeout(() => this.tick(), EVERY);
  }

  render(o) {
    const total = o.connections.reduce((n, c) => n + c.count, 0);
    clear($("op-body"),
      el("div", { class: "cards" },
        card("this instance", o.instance.status, o.instance.status),
        card("Redis", o.instance.redis),
        card("instances alive", o.instances ? o.instances.length : "? (Redis down)"),
        card("connections here", total),
        card("jobs running", o.jobs.running),
        card("jobs queued", o.jobs.queued),
        card("workers", o.jobs.workers ?? "in the server")),
      el("p", { class: "muted", text: `this instance: ${o.instance.id} · pid ${o.instance.pid} · up ${Math.round(o.instance.uptime)} s` }),
      el("h3", { text: "Instances" }),
      o.instances ? table(["instance", "status", "Redis", "connections", "host", "pid", "up (s)"],
        o.instances.map((i) => [i.id + (i.id === o.instance.id ? " (this one)" : ""), i.state.status ?? "?", i.state.redis ?? "?",
          String(i.state.connections ?? "?"), i.state.host ?? "", String(i.state.pid ?? ""), String(Math.round(i.state.uptime ?? 0))]))
        : el("p", { class: "muted", text: "Redis did not answer: this instance alone is known" }),
      el("h3", { text: "Connections by namespace and transport" }),
      table(["namespace", "transport", "count"], o.connections.map((c) => [c.namespace, c.transport, String(c.count)])),
      el("h3", { text: "Connections" }),
      el("div", { id: "op-clients" }, table(["namespace", "user", "transport", "ids", "for (s)", "sid"],
        o.clients.map((c) => [c.namespace, c.user ?? "anonymous", c.transport, Object.entries(c.params).map(([k, v]) => `${k}=${v}`).join(" "), String(c.connected_for), c.sid]))),
      el("h3", { text: "Rooms and members" }),
      table(["namespace", "room", "members"], o.rooms.map((r) => [r.namespace, r.room,
        r.members.map((m) => `${m.user ?? "anonymous"} (${m.transport})`).join(", ") + (r.size > r.members.length ? ` … ${r.size} in all` : "")])),
      el("h3", { text: "Recent audit events" }),
      table(["time", "event", "user", "detail", "status"], o.audit.map((a) => [a.timestamp, a.event === "websocket_message" ? a.message?.event : a.event,
        a.user_id ?? a.ip ?? "", a.reason ?? a.error_code ?? (a.items ? pretty(a.items) : ""), a.status ?? a.error_code ?? ""])));
  }
}
