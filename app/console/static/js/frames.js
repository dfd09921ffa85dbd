// The frames panel: every frame sent and received on every connection, newest first, filterable.
import { $, clear, clock, el, pretty } from "./dom.js";

const KEEP = 500;

export class Frames {
  constructor() {
    this.items = [];
    this.list = $("fr-list");
    this.filter = $("fr-filter");
    this.direction = $("fr-dir");
    this.filter.addEventListener("input", () => this.render());
    this.direction.addEventListener("change", () => this.render());
    $("fr-clear").addEventListener("click", () => { this.items = []; this.render(); });
  }

  // dir: "out" (sent), "in" (received) or "sys" (connection events); where: transport and endpoint.
  add(dir, where, event, data) {
    const item = { dir, where, event, data, time: clock() };
    item.text = (event + " " + where + " " + JSON.stringify(data ?? "")).toLowerCase();
    this.items.push(item);
    if (this.items.length > KEEP) this.items.shift();
    if (this.matches(item)) {
      this.list.prepend(this.row(item));
      while (this.list.childElementCount > KEEP) this.list.lastElementChild.remove();
    }
  }

  matches(item) {
    const dir = this.direction.value;
    const words = this.filter.value.trim().toLowerCase();
    return (!dir || dir === item.dir) && (!words || item.text.includes(words));
  }

  row(item) {
    const arrow = { out: "→", in: "←", sys: "•" }[item.dir];
    return el("li", { class: "frame", "data-dir": item.dir, "data-event": item.event },
      el("details", {},
        el("summary", {},
          el("span", { class: "dir-" + item.dir, text: arrow, title: { out: "sent", in: "received", sys: "connection" }[item.dir] }),
          el("span", { class: "time", text: item.time }),
          el("strong", { text: item.event }),
          el("span", { class: "where", text: item.where })),
        el("pre", { text: pretty(item.data) })));
  }

  render() {
    clear(this.list, this.items.filter((i) => this.matches(i)).reverse().map((i) => this.row(i)));
  }
}
