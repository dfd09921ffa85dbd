// Monitoring: MONITORAMENTO_INICIAR streams METRICA_PERFORMANCE to this connection, drawn as it comes;
// subscribers also get SISTEMA_ALERTA, listed as it comes.
import { $, clock, el } from "../dom.js";
import { lineChart } from "../chart.js";
import { Link } from "../channel.js";

const METRICS = ["cpu", "memoria", "tempo_resposta", "requisicoes", "execucoes", "conexoes"];
const KEEP = 120;

export class MonitoringView {
  constructor(ctx) {
    this.ctx = ctx;
    this.link = new Link(ctx, "/omni", $("mon-status"), (e, d) => this.received(e, d));
    this.samples = [];
    $("mon-start").addEventListener("click", () => this.start());
    $("mon-stop").addEventListener("click", () => this.stop());
    this.render();
  }

  async start() {
    try {
      await this.link.send("MONITORAMENTO_INICIAR", { metricas: METRICS, intervalo: Number($("mon-interval").value) });
      $("mon-stop").disabled = false;
    } catch (error) { this.alert({ nivel: "critical", categoria: "console", mensagem: error.message }); }
  }

  async stop() {
    try { await this.link.send("MONITORAMENTO_PARAR", {}); } catch { /* already gone */ }
    $("mon-stop").disabled = true;
  }

  received(event, data) {
    if (event === "METRICA_PERFORMANCE") {
      this.samples.push(data);
      if (this.samples.length > KEEP) this.samples.shift();
      this.render();
    } else if (event === "SISTEMA_ALERTA") {
      this.alert(data);
    } else if (event === "ERRO") {
      this.alert({ nivel: "critical", categoria: data.codigo, mensagem: data.mensagem });
    }
  }

  series(name, field) { return { name, values: this.samples.map((s) => s[field] ?? null) }; }

  render() {
    lineChart($("mon-cpu"), [this.series("CPU", "cpu_uso"), this.series("memory", "memoria_uso")], { max: 100 });
    lineChart($("mon-rps"), [this.series("requests/s", "requisicoes_por_segundo")]);
    lineChart($("mon-rt"), [this.series("response time", "tempo_resposta_medio")]);
    lineChart($("mon-conn"), [this.series("connections", "conexoes_ativas"), this.series("executions", "execucoes_ativas")]);
  }

  alert(data) {
    const list = $("mon-alerts");
    list.querySelector(".muted")?.remove();
    list.prepend(el("li", { class: data.nivel }, el("span", { class: "time", text: clock() + " " }),
      el("strong", { text: `${data.nivel} · ${data.categoria}: ` }), data.mensagem,
      data.acoes?.length ? el("span", { class: "muted", text: " — " + data.acoes.join("; ") }) : ""));
  }
}
