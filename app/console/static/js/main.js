// The console's entry point: sign-in, the transport switch, the tabs, and what every view shares (ctx).
import { $, el } from "./dom.js";
import { Auth } from "./auth.js";
import { Frames } from "./frames.js";
import { EventsView } from "./views/events.js";
import { ExecutionsView } from "./views/executions.js";
import { ChatView } from "./views/chat.js";
import { InvestigationsView } from "./views/investigations.js";
import { MonitoringView } from "./views/monitoring.js";
import { OperatorView } from "./views/operator.js";

function banner(text, kind = "error") {
  const node = $("banner");
  node.hidden = !text;
  node.textContent = text || "";
  node.className = "banner " + (kind === "info" ? "info" : "");
}

class Context {
  constructor(protocols) {
    this.protocols = protocols;
    this.auth = new Auth();
    this.frames = new Frames();
    this.links = new Set();
    this.transport = document.querySelector("input[name=transport]:checked").value;
    this.problems = new Map(); // namespace → what is wrong with its connection
  }

  protocol(namespace) { return this.protocols.find((p) => p.namespace === namespace); }

  restartLinks() { for (const link of this.links) link.restart(); }

  // A banner while any connection is refused or lost, gone once every one is back.
  connectionStatus(namespace, status) {
    if (status.state === "refused" || status.state === "reconnecting") this.problems.set(namespace, status);
    else this.problems.delete(namespace);
    const [first] = this.problems.entries();
    if (!first) { banner(""); return; }
    const [where, s] = first;
    banner(`${where}: ${s.text}`, s.state === "reconnecting" ? "info" : "error");
  }

  // Fetch a download with the token in a header (never in a URL), and hand it to the browser as a file.
  async download(url, format, name) {
    const target = new URL(url, location.href);
    target.searchParams.set("format", format);
    const response = await fetch(target.href, { headers: this.auth.headers() });
    if (!response.ok) { banner(`download refused: ${response.status}`); return; }
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
    document.body.append(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }
}

function showWho(ctx) {
  const claims = ctx.auth.claims;
  $("who").hidden = !claims;
  $("signin").hidden = Boolean(claims);
  if (claims) {
    const expires = new Date(claims.exp * 1000).toLocaleTimeString();
    $("who-text").textContent = `${claims.sub} · ${claims.scope || "no scope"} · until ${expires}`;
  }
}

function setUpSignIn(ctx, config) {
  $("dev-token").hidden = !config.dev_tokens;
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) { banner("Paste a token first."); return; }
    $("token-input").value = "";
    ctx.auth.set(token);
  });
  $("dev-button").addEventListener("click", async () => {
    try {
      await ctx.auth.mint($("dev-name").value.trim(), $("dev-admin").checked);
      banner("");
    } catch (error) { banner("No development token: " + error.message); }
  });
  $("signout").addEventListener("click", () => ctx.auth.set(""));
  ctx.auth.onChange(() => { showWho(ctx); ctx.restartLinks(); });
  showWho(ctx);
}

function setUpTabs(views) {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const select = (tab) => {
    for (const t of tabs) {
      const chosen = t === tab;
      t.setAttribute("aria-selected", String(chosen));
      t.tabIndex = chosen ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !chosen;
    }
    views.operator.show(tab.id === "tab-operator");
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      next.focus();
      select(next);
    });
  });
  select(tabs[0]);
}

async function main() {
  const [schemas, config] = await Promise.all([
    fetch("/api/v1/schemas").then((r) => r.json()), fetch("/console/config.json").then((r) => r.json())]);
  const ctx = new Context(schemas.protocols);
  setUpSignIn(ctx, config);
  for (const radio of document.querySelectorAll("input[name=transport]")) {
    radio.addEventListener("change", () => { ctx.transport = radio.value; ctx.restartLinks(); });
  }
  const views = {
    events: new EventsView(ctx), executions: new ExecutionsView(ctx), chat: new ChatView(ctx),
    investigations: new InvestigationsView(ctx), monitoring: new MonitoringView(ctx), operator: new OperatorView(ctx),
  };
  setUpTabs(views);
  document.body.dataset.ready = "true";
}

main().catch((error) => banner("The console could not start: " + error.message));
