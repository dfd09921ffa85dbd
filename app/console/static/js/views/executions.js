// Executions: start a keyword run, follow EXECUCAO_STATUS on a progress bar, keywords by relevance,
// clusters as groups, pause/resume/cancel as the state flow allows, and the downloads at the end.
import { $, clear, el, randomId } from "../dom.js";
import { Link } from "../channel.js";

// The document's state flow: which controls each status allows (the server checks it again).
const ALLOWED = {
  na_fila: ["pause", "cancel"], iniciada: ["pause", "cancel"], em_andamento: ["pause", "cancel"],
  pausada: ["resume", "cancel"], concluida: [], cancelada: [], erro: [],
};
const CONTROLS = { pause: "EXECUCAO_PAUSAR", resume: "EXECUCAO_RESUMIR", cancel: "EXECUCAO_CANCELAR" };

export class ExecutionsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.link = new Link(ctx, "/omni", $("ex-status-conn"), (e, d) => this.received(e, d));
    $("ex-form").addEventListener("submit", (e) => { e.preventDefault(); this.start(); });
    for (const [name, event] of Object.entries(CONTROLS)) $("ex-" + name).addEventListener("click", () => this.control(event));
    this.reset();
  }

  reset() {
    this.id = null;
    this.requestId = null;
    this.keywords = new Map();
    this.clusters = new Map();
    this.setState("idle");
    this.setProgress(0);
    clear($("ex-message"));
    $("ex-downloads").hidden = true;
    this.render();
  }

  async start() {
    const url = $("ex-url").value.trim();
    if (!/^https?:\/\/[^\s/]+/.test(url)) { this.message("Enter an absolute http(s) URL.", true); return; }
    const numbers = ["ex-depth", "ex-max", "ex-timeout"].map((id) => Number($(id).value));
    const [profundidade, max_keywords, timeout] = numbers;
    this.reset();
    this.requestId = randomId("exec_");
    this.message("starting…");
    try {
      await this.link.send("EXECUCAO_INICIAR", { blog_url: url, request_id: this.requestId,
        configuracoes: { max_keywords, profundidade, timeout } });
    } catch (error) { this.message(error.message, true); }
  }

  async control(event) {
    try {
      await this.link.send(event, { execucao_id: this.id, request_id: randomId("ctl_") });
    } catch (error) { this.message(error.message, true); }
  }

  received(event, data) {
    if (event === "EXECUCAO_INICIADA" && data.request_id === this.requestId) {
      this.id = data.execucao_id;
      $("ex-id").textContent = this.id;
      this.setState(data.status);
      this.message("running");
      return;
    }
    if (event === "ERRO" && (data.request_id === this.requestId || data.request_id?.startsWith("ctl_"))) {
      this.message(`${data.codigo}: ${data.mensagem}`, true);
      return;
    }
    if (!this.id || data.execucao_id !== this.id) return;
    const handler = this["on_" + event];
    if (handler) handler.call(this, data);
  }

  on_EXECUCAO_STATUS(data) {
    this.setState(data.status);
    this.setProgress(data.progresso.percentual, `${data.progresso.atual}/${data.progresso.total} pages · ${data.keywords_encontradas} keywords · ${data.tempo_decorrido.toFixed(1)} s`);
    if (data.posicao) this.message(`waiting for a worker: position ${data.posicao} in the queue`);
    if (data.tentativa) this.message(`started over (attempt ${data.tentativa}): its worker stopped`);
  }

  on_KEYWORD_ENCONTRADA(data) {
    this.keywords.set(data.keyword.termo, { ...data.keyword, cluster_id: data.cluster_id });
    this.schedule();
  }

  on_CLUSTER_FORMADO(data) {
    this.clusters.set(data.cluster.id, data.cluster);
    this.schedule();
  }

  on_EXECUCAO_PAUSADA(data) { this.setState(data.status); this.message("paused: no request leaves for the site"); }
  on_EXECUCAO_RESUMIDA(data) { this.setState(data.status); this.message("running"); }
  on_EXECUCAO_CANCELADA(data) { this.setState(data.status); this.message("cancelled"); }

  on_EXECUCAO_CONCLUIDA(data) {
    this.setState("concluida");
    const r = data.resultado;
    this.setProgress(100, `${r.total_keywords} keywords · ${r.clusters_formados} clusters · ${r.tempo_total.toFixed(1)} s · success ${(r.taxa_sucesso * 100).toFixed(0)} %`);
    this.message("completed");
    if (data.download_url) this.downloads(data.download_url);
  }

  on_EXECUCAO_ERRO(data) {
    this.setState("erro");
    this.message(`${data.erro.codigo}: ${data.erro.mensagem}${data.recomendacao ? " — " + data.recomendacao : ""}`, true);
  }

  setState(status) {
    this.status = status;
    $("ex-state").textContent = status;
    const allowed = ALLOWED[status] || [];
    for (const name of Object.keys(CONTROLS)) $("ex-" + name).disabled = !this.id || !allowed.includes(name);
  }

  setProgress(percent, detail = "") {
    $("ex-progress").value = percent;
    $("ex-progress-text").textContent = `${Math.round(percent)} %${detail ? " · " + detail : ""}`;
  }

  message(text, bad = false) {
    const node = $("ex-message");
    node.textContent = text;
    node.className = bad ? "error" : "muted";
    if (bad) node.setAttribute("role", "alert"); else node.removeAttribute("role");
  }

  downloads(url) {
    const box = $("ex-downloads");
    const button = (format) => el("button", { type: "button", "data-format": format, text: "Download " + format.toUpperCase(),
      onclick: () => this.ctx.download(url, format, `${this.id}.${format}`) });
    clear(box, el("strong", { text: "Results:" }), button("json"), button("csv"));
    box.hidden = false;
  }

  schedule() {
    if (this.pendingRender) return;
    this.pendingRender = requestAnimationFrame(() => { this.pendingRender = null; this.render(); });
  }

  render() {
    const names = new Map([...this.clusters.values()].map((c) => [c.id, c.nome]));
    const rows = [...this.keywords.values()].sort((a, b) => b.relevancia - a.relevancia);
    clear($("ex-keywords").tBodies[0], rows.map((k, i) => el("tr", {},
      el("td", { class: "num", text: String(i + 1) }), el("td", { text: k.termo }),
      el("td", { class: "num", text: k.relevancia.toFixed(3) }), el("td", { class: "num", text: String(k.frequencia) }),
      el("td", { text: names.get(k.cluster_id) || "" }))));
    $("ex-kw-count").textContent = rows.length ? `(${rows.length})` : "";
    const members = new Map();
    for (const c of this.clusters.values()) members.set(c.id, new Set(c.keywords));
    for (const k of this.keywords.values()) if (k.cluster_id && members.has(k.cluster_id)) members.get(k.cluster_id).add(k.termo);
    clear($("ex-clusters"), [...this.clusters.values()].map((c) => el("div", { class: "cluster" },
      el("strong", { text: c.nome }), el("span", { class: "muted", text: ` · ${members.get(c.id).size} terms` }),
      el("div", {}, [...members.get(c.id)].map((t) => el("span", { class: "chip", text: t }))))));
  }
}
