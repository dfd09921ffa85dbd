// A form from an event's JSON Schema (pydantic's), and the same schema's rules checked before sending:
// required fields, types, ranges, lengths, patterns, choices. `read()` answers {value, errors}.
import { el } from "./dom.js";

function resolve(schema, root) {
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return { ...root.$defs[name], ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$ref")) };
  }
  const options = schema.anyOf;
  if (options && options.length === 2 && options.some((o) => o.type === "null")) { // Optional[X]
    const inner = resolve(options.find((o) => o.type !== "null"), root);
    const { anyOf, ...rest } = schema;
    return { ...inner, ...rest, nullable: true };
  }
  return schema;
}

function hint(s) {
  const parts = [];
  if (s.minimum !== undefined) parts.push("≥ " + s.minimum);
  if (s.maximum !== undefined) parts.push("≤ " + s.maximum);
  if (s.minLength) parts.push(`at least ${s.minLength} characters`);
  if (s.maxLength) parts.push(`at most ${s.maxLength} characters`);
  if (s.pattern) parts.push("pattern " + s.pattern);
  if (s.maxItems) parts.push(`at most ${s.maxItems} items`);
  if (s.description) parts.push(s.description);
  return parts.join(" · ");
}

function checkScalar(s, value, name) {
  if (s.type === "integer" && !Number.isInteger(value)) return `${name}: a whole number`;
  if ((s.type === "number" || s.type === "integer") && typeof value === "number") {
    if (Number.isNaN(value)) return `${name}: a number`;
    if (s.minimum !== undefined && value < s.minimum) return `${name}: at least ${s.minimum}`;
    if (s.maximum !== undefined && value > s.maximum) return `${name}: at most ${s.maximum}`;
  }
  if (s.type === "string" && typeof value === "string") {
    if (s.minLength && value.length < s.minLength) return `${name}: at least ${s.minLength} characters`;
    if (s.maxLength && value.length > s.maxLength) return `${name}: at most ${s.maxLength} characters`;
    if (s.pattern && !new RegExp(s.pattern, "u").test(value)) return `${name}: must match ${s.pattern}`;
    if (s.enum && !s.enum.includes(value)) return `${name}: one of ${s.enum.join(", ")}`;
  }
  return null;
}

// One field: {node, read() → {present, value, errors}}.
function field(name, raw, required, path, root) {
  const s = resolve(raw, root);
  const id = "f-" + path.join("-");
  const label = el("label", { for: id, text: name + (required ? " *" : "") });
  const small = el("small", { text: hint(s) });
  if (s.type === "object" && s.properties) {
    const inner = fields(s, path, root);
    const node = el("fieldset", {}, el("legend", { text: name }), inner.nodes);
    return { node, read: () => { const r = inner.read(); return { present: true, value: r.value, errors: r.errors }; } };
  }
  if (s.type === "array" && s.items && resolve(s.items, root).enum) {
    const choices = resolve(s.items, root).enum;
    const boxes = choices.map((c) => el("input", { type: "checkbox", value: c, id: id + "-" + c }));
    const node = el("div", { class: "field" }, el("span", { text: name + (required ? " *" : "") }),
      el("div", { class: "choices", role: "group", "aria-label": name }, boxes.map((b) => el("label", { class: "check" }, b, b.value))), small);
    return { node, read: () => {
      const value = boxes.filter((b) => b.checked).map((b) => b.value);
      const errors = [];
      if (s.minItems && value.length < s.minItems) errors.push(`${path.join(".")}: choose at least ${s.minItems}`);
      return { present: required || value.length > 0, value, errors };
    } };
  }
  let input;
  if (s.const !== undefined) input = el("input", { id, value: s.const, readonly: true });
  else if (s.enum) input = el("select", { id }, (required ? [] : [el("option", { value: "", text: "—" })]).concat(s.enum.map((v) => el("option", { value: v, text: v }))));
  else if (s.type === "boolean") input = el("input", { id, type: "checkbox" });
  else if (s.type === "integer" || s.type === "number") input = el("input", { id, type: "number", step: s.type === "integer" ? 1 : "any", min: s.minimum, max: s.maximum });
  else if (s.type === "string") input = el("input", { id, type: "text", maxlength: s.maxLength });
  else input = el("textarea", { id, rows: 3, placeholder: "JSON" });
  if (s.default !== undefined && s.default !== null && s.const === undefined) {
    if (s.type === "boolean") input.checked = s.default; else input.value = typeof s.default === "object" ? JSON.stringify(s.default) : s.default;
  }
  const error = el("span", { class: "error", "aria-live": "polite" });
  const node = el("div", { class: "field" }, label, input, small, error);
  const read = () => {
    const where = path.join(".");
    let value;
    if (s.const !== undefined) return { present: false };
    if (s.type === "boolean") value = input.checked;
    else if (input.value === "") {
      const errors = required ? [`${where}: required`] : [];
      return { present: false, errors };
    } else if (s.type === "integer" || s.type === "number") value = Number(input.value);
    else if (input.tagName === "TEXTAREA") {
      try { value = JSON.parse(input.value); } catch { return { present: true, errors: [`${where}: not valid JSON`] }; }
    } else value = input.value;
    const problem = checkScalar(s, value, where);
    return { present: true, value, errors: problem ? [problem] : [] };
  };
  return { node, read: () => {
    const result = read();
    node.classList.toggle("invalid", Boolean(result.errors?.length));
    error.textContent = result.errors?.join("; ") || "";
    if (input) input.setAttribute("aria-invalid", result.errors?.length ? "true" : "false");
    return { errors: [], ...result };
  } };
}

function fields(schema, path, root) {
  const required = new Set(schema.required || []);
  const parts = Object.entries(schema.properties || {}).map(([name, prop]) => [name, field(name, prop, required.has(name), [...path, name], root)]);
  return {
    nodes: parts.map(([, f]) => f.node),
    read: () => {
      const value = {};
      const errors = [];
      for (const [name, f] of parts) {
        const r = f.read();
        errors.push(...r.errors);
        if (r.present && !r.errors.length) value[name] = r.value;
      }
      return { value, errors };
    },
  };
}

// Fill `form` with the fields of `schema`; returns read() → {value, errors}.
export function buildForm(form, schema) {
  const built = fields(schema, ["data"], schema);
  form.replaceChildren(...built.nodes);
  if (!built.nodes.length) form.append(el("p", { class: "muted", text: "No fields: the event carries an empty object." }));
  return built.read;
}
