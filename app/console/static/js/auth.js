// The token: kept in sessionStorage (this tab only), sent as a header, a subprotocol or Socket.IO auth,
// never put in a URL.
const KEY = "ponte.token";

export function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

export class Auth {
  constructor() {
    this.listeners = [];
    this.token = sessionStorage.getItem(KEY) || "";
  }

  get claims() { return this.token ? claims(this.token) : null; }

  get scopes() { return (this.claims?.scope || "").split(" ").filter(Boolean); }

  has(scope) { return this.scopes.includes(scope) || this.scopes.includes("admin"); }

  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
    this.listeners.forEach((fn) => fn(token));
  }

  onChange(fn) { this.listeners.push(fn); }

  headers(extra = {}) {
    return this.token ? { ...extra, Authorization: "Bearer " + this.token } : extra;
  }

  async mint(sub, admin) {
    const scopes = ["executions", "notifications", "monitoring", "chat", "investigations", ...(admin ? ["admin"] : [])];
    const response = await fetch("/api/v1/dev/token", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sub, scopes }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error?.message || response.statusText);
    this.set(body.token);
    return body;
  }
}
