// Hand-drawn SVG charts: a line chart of a few series, and paired bars (expected against actual).
import { clear, el } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function short(value) {
  const abs = Math.abs(value);
  if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (abs >= 1e3) return (value / 1e3).toFixed(1) + "k";
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

// series: [{name, values: [number|null]}]; the last `points` values are drawn, newest on the right.
export function lineChart(container, series, { min = 0, max = null, points = 60 } = {}) {
  const width = 480, height = 150, left = 36, top = 8, bottom = 18;
  const all = series.flatMap((s) => s.values.slice(-points)).filter((v) => typeof v === "number");
  const top_ = max ?? Math.max(1, ...all) * 1.15;
  const x = (i) => left + (i * (width - left - 6)) / Math.max(1, points - 1);
  const y = (v) => top + (height - top - bottom) * (1 - (v - min) / Math.max(1e-9, top_ - min));
  const grid = [0, 0.5, 1].map((f) => {
    const value = min + f * (top_ - min);
    return svg("g", {}, svg("line", { class: "grid", x1: left, x2: width, y1: y(value), y2: y(value) }),
      svg("text", { x: 2, y: y(value) + 3, text: short(value) }));
  });
  const lines = series.map((s, index) => {
    const values = s.values.slice(-points);
    const offset = points - values.length;
    const coords = values.map((v, i) => (typeof v === "number" ? `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}` : null)).filter(Boolean);
    return svg("polyline", { class: "s" + index, points: coords.join(" ") });
  });
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": series.map((s) => s.name).join(", ") },
    ...grid, svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }), ...lines);
  const legend = el("div", { class: "legend" }, series.map((s, i) => {
    const last = s.values[s.values.length - 1];
    return el("span", { class: "s" + i, text: `${s.name}${typeof last === "number" ? ": " + short(last) : ""}` });
  }));
  clear(container, chart, legend);
}

// rows: [{label, expected, actual}]; each row is scaled to its own larger value, so the ratio shows.
export function pairedBars(container, rows) {
  if (!rows.length) { clear(container, el("p", { class: "muted", text: "No flagged contract yet." })); return; }
  const width = 480, row = 26, left = 120, right = 70;
  const height = rows.length * row + 4;
  const groups = rows.map((r, i) => {
    const scale = (width - left - right) / Math.max(r.expected, r.actual, 1e-9);
    const y0 = i * row + 2;
    const ratio = r.expected > 0 ? `×${(r.actual / r.expected).toFixed(1)}` : "";
    return svg("g", {},
      svg("title", { text: `${r.label}: expected ${r.expected}, actual ${r.actual}` }),
      svg("text", { x: 0, y: y0 + 15, text: r.label.slice(0, 20) }),
      svg("rect", { class: "bar-expected", x: left, y: y0 + 2, height: 9, width: Math.max(1, r.expected * scale) }),
      svg("rect", { class: "bar-actual", x: left, y: y0 + 12, height: 9, width: Math.max(1, r.actual * scale) }),
      svg("text", { x: width - right + 6, y: y0 + 15, text: ratio }));
  });
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "flagged contracts: value against expected value" }, ...groups);
  const legend = el("div", { class: "legend" }, el("span", { class: "bar-expected", text: "expected value" }), el("span", { class: "bar-actual", text: "actual value" }));
  clear(container, legend, chart);
}
