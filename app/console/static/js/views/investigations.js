// Investigations: upload contracts (or the sample), follow the investigation's endpoint: progress,
// anomalies by severity, a chart of each flagged contract's value against its expected value, the
// agents' findings, and the report.
import { $, clear, el, money } from "../dom.js";
import { pairedBars } from "../chart.js";
import { Link } from "../channel.js";

const RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const CHART_ROWS = 20;

export class InvestigationsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.link = new Link(ctx, "/investigations", $("inv-status"), (e, d) => this.received(e, d));
    $("inv-form").addEventListener("submit", (e) => { e.preventDefault(); this.uploadFile(); });
    $("inv-sample").addEventListener("click", () => this.uploadSample());
    this.reset();
  }

  reset() {
    this.id = null;
    this.created = null;
    this.anomalies = new Map();
    this.findings = [];
    $("inv-id").textContent = "—";
    $("inv-state").textContent = "idle";
    this.progress(0, "");
    clear($("inv-findings"));
    clear($("inv-report"), el("p", { class: "muted", text: "The report appears when it is ready." }));
    this.render();
  }

  async uploadFile() {
    const file = $("inv-file").files[0];
    if (!file) { this.message("Choose a CSV or JSON file first, or use the sample.", true); return; }
    const json = file.name.toLowerCase().endsWith(".json") || file.type === "application/json";
    await this.upload(await file.text(), json ? "application/json" : "text/csv", file.name);
  }

  async uploadSample() {
    const response = await fetch("/console/sample-contracts.csv");
    await this.upload(await response.text(), "text/csv", "the sample (synthetic contracts)");
  }

  async upload(body, type, what) {
    if (!this.ctx.auth.token) { this.message("Sign in first: an upload needs a token.", true); return; }
    this.reset();
    this.message(`uploading ${what}…`);
    const response = await fetch("/api/v1/investigations", { method: "POST", body, headers: this.ctx.auth.headers({ "Content-Type": type }) });
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 201) {
      this.message(`refused (${response.status}): ${answer.error?.message || response.statusText}${answer.error?.field ? " [" + answer.error.field + "]" : ""}`, true);
      return;
    }
    this.created = answer;
    this.id = answer.investigation_id;
    $("inv-id").textContent = this.id;
    $("inv-state").textContent = answer.status;
    this.message(`${answer.records} contracts accepted`);
    this.link.open({ investigation_id: this.id });
  }

  received(event, data) {
    if (!this.id || data.investigation_id !== this.id) return;
    if (event === "investigation_progress") {
      $("inv-state").textContent = data.status;
      this.progress(data.progress, data.message);
    } else if (event === "anomaly_detected") {
      this.anomalies.set(key(data), data);
      this.schedule();
    } else if (event === "agent_finding") {
      $("inv-findings").append(el("li", {}, el("strong", { text: `${data.agent_name}: ` }), data.finding,
        data.confidence != null ? el("span", { class: "muted", text: ` (confidence ${Math.round(data.confidence * 100)} %)` }) : ""));
    } else if (event === "report_ready") {
      $("inv-state").textContent = "completed";
      this.progress(100, data.summary || "report ready");
      this.showReport(data.report_url);
      this.reconcile();
    }
  }

  // The state behind the keyed url holds every anomaly stored: fill in any the live stream did not carry.
  async reconcile() {
    if (!this.created) return;
    const response = await fetch(this.created.url);
    if (!response.ok) return;
    const state = await response.json();
    for (const anomaly of state.anomalies || []) this.anomalies.set(key(anomaly), anomaly);
    this.schedule();
  }

  showReport(url) {
    const report = new URL(url, location.href);
    report.searchParams.set("format", "html");
    clear($("inv-report"), el("iframe", { src: report.href, sandbox: "", title: "Investigation report", referrerpolicy: "no-referrer" }));
  }

  progress(value, text) {
    $("inv-progress").value = value;
    $("inv-progress-text").textContent = `${Math.round(value)} %`;
    this.message(text);
  }

  message(text, bad = false) {
    const node = $("inv-message");
    node.textContent = text;
    node.className = bad ? "error" : "muted";
    if (bad) node.setAttribute("role", "alert"); else node.removeAttribute("role");
  }

  schedule() {
    if (this.pendingRender) return;
    this.pendingRender = requestAnimationFrame(() => { this.pendingRender = null; this.render(); });
  }

  render() {
    const rows = [...this.anomalies.values()].sort((a, b) => RANK[a.severity] - RANK[b.severity]
      || ratio(b) - ratio(a));
    clear($("inv-anomalies").tBodies[0], rows.map((a) => el("tr", { class: "sev-row-" + a.severity },
      el("td", {}, el("span", { class: "sev sev-" + a.severity, text: a.severity })),
      el("td", { class: "nowrap", text: a.details.contract_id }), el("td", { class: "num", text: money(a.details.expected_value) }),
      el("td", { class: "num", text: money(a.details.actual_value) }), el("td", { text: a.description }))));
    $("inv-count").textContent = rows.length ? `(${rows.length})` : "";
    const flagged = rows.filter((a) => a.details.expected_value > 0).sort((a, b) => ratio(b) - ratio(a)).slice(0, CHART_ROWS);
    pairedBars($("inv-chart"), flagged.map((a) => ({ label: a.details.contract_id, expected: a.details.expected_value, actual: a.details.actual_value })));
  }
}

function key(anomaly) { return `${anomaly.details.kind || ""}:${anomaly.details.contract_id}:${anomaly.description}`; }

function ratio(anomaly) { return anomaly.details.actual_value / Math.max(anomaly.details.expected_value, 1e-9); }
