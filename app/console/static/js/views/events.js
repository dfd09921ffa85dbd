// Events: every client event of every endpoint as a form built from its schema, checked in the page,
// sent over the chosen transport, and the server's answer beside it.
import { $, clear, el, pretty, randomId } from "../dom.js";
import { buildForm } from "../schemaform.js";
import { Link } from "../channel.js";

const ANSWER_WINDOW = 3000; // ms during which frames received count as the answer
const QUIET = new Set(["heartbeat", "SESSAO_CONECTADA", "connection", "history", "presence"]); // not answers

export class EventsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.select = $("ev-protocol");
    this.param = $("ev-param");
    this.answer = $("ev-answer");
    this.links = new Map(ctx.protocols.map((p) => [p.namespace, new Link(ctx, p.namespace, $("ev-status"), (e, d) => this.received(p.namespace, e, d))]));
    for (const p of ctx.protocols) this.select.append(el("option", { value: p.namespace, text: `${p.namespace} · ${p.raw_path}` }));
    this.select.addEventListener("change", () => this.showProtocol());
    $("ev-connect").addEventListener("click", () => this.connect());
    $("ev-form").addEventListener("submit", (e) => { e.preventDefault(); this.send(); });
    this.showProtocol();
  }

  get protocol() { return this.ctx.protocol(this.select.value); }

  params() {
    const name = this.protocol.params[0];
    return name ? { [name]: this.param.value.trim() } : {};
  }

  showProtocol() {
    const p = this.protocol;
    const name = p.params[0];
    $("ev-param-label").hidden = !name;
    if (name) {
      $("ev-param-label").firstChild.textContent = name + " ";
      if (!this.param.value || this.param.dataset.for !== name) this.param.value = name === "session_id" ? randomId("console-") : "";
      this.param.dataset.for = name;
    }
    const list = $("ev-list");
    clear(list, Object.keys(p.client).map((event) => el("li", {}, el("button", { type: "button", "data-event": event, "aria-pressed": "false", text: event, onclick: () => this.choose(event) }))));
    this.choose(Object.keys(p.client)[0]);
  }

  choose(event) {
    this.event = event;
    for (const b of $("ev-list").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.event === event));
    const form = $("ev-form");
    const schema = this.protocol.client[event];
    this.read = buildForm(form, schema);
    const requestId = form.querySelector("#f-data-request_id");
    if (requestId) requestId.value = randomId("req_");
    form.prepend(el("h3", { text: event }), el("p", { class: "muted", text: schema.description || "" }));
    form.append(el("button", { type: "submit", id: "ev-send", text: "Send " + event }));
  }

  connect() {
    const link = this.links.get(this.select.value);
    link.open(this.params());
  }

  async send() {
    const { value, errors } = this.read();
    if (errors.length) {
      clear(this.answer, el("p", { class: "error", role: "alert", text: "Not sent: " + errors.join("; ") }));
      return;
    }
    const link = this.links.get(this.select.value);
    try {
      const channel = await link.open(this.params()).ready();
      this.pending = { event: this.event, until: Date.now() + ANSWER_WINDOW, namespace: this.select.value };
      clear(this.answer, el("p", { class: "muted", text: `sent ${this.event} — waiting…` }), el("pre", { text: pretty(value) }));
      channel.send(this.event, value);
    } catch (error) {
      clear(this.answer, el("p", { class: "error", role: "alert", text: "Not sent: " + error.message }));
      this.pending = null;
    }
  }

  received(namespace, event, data) {
    const pending = this.pending;
    if (!pending || pending.namespace !== namespace || Date.now() > pending.until || QUIET.has(event)) return;
    if (this.answer.firstChild?.classList?.contains("muted")) clear(this.answer);
    this.answer.append(el("div", { class: "answer-item", "data-event": event }, el("strong", { text: "← " + event }), el("pre", { text: pretty(data) })));
  }
}
