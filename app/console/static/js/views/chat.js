// Chat: a session's window — the agents' answers streamed chunk by chunk under their names, the typing
// indicator, the other clients' messages, and the investigations the chat starts, followed in place.
import { $, el, randomId } from "../dom.js";
import { Link } from "../channel.js";

const SESSION_KEY = "ponte.chat.session";
const SEVERITIES = ["critical", "high", "medium", "low"];

class InvestigationCard {
  constructor(id) {
    this.counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    this.title = el("strong", { text: `Investigation ${id}` });
    this.progress = el("progress", { max: 100, value: 0, "aria-label": `progress of ${id}` });
    this.status = el("span", { class: "muted" });
    this.anomalies = el("div", { class: "muted", text: "no anomaly yet" });
    this.findings = el("ul", { class: "findings" });
    this.report = el("div");
    this.node = el("div", { class: "msg inv-card", "data-investigation": id }, this.title, el("div", { class: "progress-line" }, this.progress, this.status), this.anomalies, this.findings, this.report);
  }

  update(event, data) {
    if (event === "investigation_progress") {
      this.progress.value = data.progress;
      this.status.textContent = `${Math.round(data.progress)} % · ${data.status} · ${data.message}`;
    } else if (event === "anomaly_detected") {
      this.counts[data.severity] += 1;
      this.anomalies.replaceChildren(...SEVERITIES.filter((s) => this.counts[s]).map((s) => el("span", { class: `sev sev-${s}`, text: `${this.counts[s]} ${s}` })), " anomalies");
    } else if (event === "agent_finding") {
      this.findings.append(el("li", {}, el("strong", { text: data.agent_name + ": " }), data.finding));
    } else if (event === "report_ready") {
      this.progress.value = 100;
      this.report.replaceChildren(el("a", { href: data.report_url + "&format=html", target: "_blank", rel: "noopener noreferrer", text: "Open the report" }),
        data.summary ? el("p", { text: data.summary }) : "");
    }
  }
}

export class ChatView {
  constructor(ctx) {
    this.ctx = ctx;
    this.log = $("chat-log");
    this.session = $("chat-session");
    this.session.value = sessionStorage.getItem(SESSION_KEY) || randomId("console-");
    this.link = new Link(ctx, "/chat", $("chat-status"), (e, d) => this.received(e, d));
    this.streams = new Map(); // agent_id → the bubble being streamed
    this.cards = new Map();
    $("chat-connect").addEventListener("click", () => this.connect());
    $("chat-form").addEventListener("submit", (e) => { e.preventDefault(); this.send(); });
  }

  connect() {
    const session_id = this.session.value.trim();
    sessionStorage.setItem(SESSION_KEY, session_id);
    return this.link.open({ session_id });
  }

  async send() {
    const input = $("chat-input");
    const message = input.value.trim();
    if (!message) return;
    try {
      await this.connect().ready();
      this.link.channel.send("chat", { message });
      this.bubble("user", message, "you");
      input.value = "";
    } catch (error) {
      this.note("Not sent: " + error.message, true);
    }
  }

  received(event, data) {
    const handler = this["on_" + event];
    if (handler) handler.call(this, data);
    else if (["investigation_progress", "anomaly_detected", "agent_finding", "report_ready"].includes(event)) this.card(data.investigation_id).update(event, data);
  }

  on_connection(data) { this.note(`connected to session ${data.session_id}`); }
  on_presence(data) { this.note(`${data.user || "an anonymous client"} ${data.action}${data.count ? ` · ${data.count} here` : ""}`); }
  on_history(data) { for (const m of data.messages) this.bubble(m.role, m.content, m.role === "user" ? "earlier" : "agent"); }
  on_error(data) { this.note(`${data.code}: ${data.message}`, true); this.typing(null); }
  on_subscribed(data) { this.note(`following ${data.investigation_id}`); }

  on_typing(data) { this.typing(data.is_typing === false ? null : data.agent || "someone"); }

  on_chat(data) {
    if (data.role === "user") { this.bubble("user", data.content, "another client"); return; }
    this.typing(null);
    const key = data.agent_id || "agent";
    let bubble = this.streams.get(key);
    if (!bubble) {
      bubble = this.bubble("assistant", "", data.agent_name || data.agent_id || "agent");
      bubble.node.classList.add("streaming");
      this.streams.set(key, bubble);
    }
    if (data.done) {
      bubble.content.textContent = data.content;
      bubble.node.classList.remove("streaming");
      bubble.node.dataset.done = "true";
      this.streams.delete(key);
    } else {
      bubble.content.textContent += data.content;
    }
    this.scroll();
  }

  typing(agent) { $("chat-typing").textContent = agent ? `${agent} is typing…` : ""; }

  card(id) {
    if (!this.cards.has(id)) {
      const card = new InvestigationCard(id);
      this.cards.set(id, card);
      this.log.append(card.node);
      this.scroll();
    }
    return this.cards.get(id);
  }

  bubble(role, text, who) {
    const content = el("span", { class: "content", text });
    const node = el("div", { class: "msg " + role, "data-role": role }, el("span", { class: "agent", text: who }), content);
    this.log.append(node);
    this.scroll();
    return { node, content };
  }

  note(text, bad = false) {
    this.log.append(el("div", { class: "msg note" + (bad ? " error" : ""), role: bad ? "alert" : null, text }));
    this.scroll();
  }

  scroll() { this.log.scrollTop = this.log.scrollHeight; }
}
