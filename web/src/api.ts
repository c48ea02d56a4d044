// The API client: bearer tokens, silent refresh, and errors that carry the server's envelope
// ({"error":{"code","message","field"}}) so every page can show them where they belong.
//
// The access token lives in memory only; the refresh token in sessionStorage, so a reload
// keeps the session but closing the tab ends it (docs/decisions/0029).

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

export interface Session {
  username: string;
  role: string;
}

const REFRESH_KEY = "clisonix.refresh";
const USER_KEY = "clisonix.user";

let accessToken: string | null = null;
let refreshing: Promise<boolean> | null = null;
const listeners = new Set<(s: Session | null, reason?: string) => void>();

export function onSessionChange(fn: (s: Session | null, reason?: string) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(s: Session | null, reason?: string) {
  for (const fn of listeners) fn(s, reason);
}

export function currentSession(): Session | null {
  const raw = sessionStorage.getItem(USER_KEY);
  if (!raw || !sessionStorage.getItem(REFRESH_KEY)) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

export function token(): string | null {
  return accessToken;
}

// The gateway's schema check names fields as JSON pointers ("/scope/device"), handlers by
// name ("scope.device"): pages match the dotted form.
function normalizeField(field: unknown): string | undefined {
  if (typeof field !== "string" || !field) return undefined;
  return field.replace(/^\//, "").replace(/\//g, ".");
}

async function envelope(res: Response): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = `${res.status} ${res.statusText || "error"}`;
  let field: string | undefined;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = normalizeField(body.error.field);
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, code, message, field);
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

function store(t: Tokens) {
  accessToken = t.access_token;
  sessionStorage.setItem(REFRESH_KEY, t.refresh_token);
}

export async function login(username: string, password: string): Promise<Session> {
  const res = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw await envelope(res);
  store(await res.json());
  const me = await api<{ name: string; role: string }>("/api/v1/auth/me");
  const s = { username: me.name, role: me.role };
  sessionStorage.setItem(USER_KEY, JSON.stringify(s));
  emit(s);
  return s;
}

function dropSession(reason?: string) {
  accessToken = null;
  sessionStorage.removeItem(REFRESH_KEY);
  sessionStorage.removeItem(USER_KEY);
  emit(null, reason);
}

export async function logout(): Promise<void> {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  let reason: string | undefined;
  try {
    if (refresh) {
      const res = await fetch("/api/v1/auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refresh }),
      });
      if (!res.ok && res.status !== 401)
        reason = "Logged out here, but the server said: " + (await envelope(res)).message;
    }
  } catch (e) {
    reason = "Logged out here, but the server could not be reached: " + (e instanceof Error ? e.message : String(e));
  } finally {
    dropSession(reason);
  }
}

// One refresh at a time: concurrent 401s wait for the same exchange (a refresh token is
// spent on use, so two parallel refreshes would end the session).
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const rt = sessionStorage.getItem(REFRESH_KEY);
    if (!rt) return false;
    try {
      const res = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: rt }),
      });
      if (!res.ok) {
        if (res.status === 400 || res.status === 401) dropSession("Your session expired: log in again.");
        return false;
      }
      store(await res.json());
      return true;
    } catch {
      return false;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  raw?: string;
  contentType?: string;
  text?: boolean;
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  const send = () => {
    const headers: Record<string, string> = {};
    if (accessToken) headers["Authorization"] = "Bearer " + accessToken;
    let body: string | undefined;
    if (opts.raw !== undefined) {
      body = opts.raw;
      headers["Content-Type"] = opts.contentType ?? "text/plain";
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    }
    return fetch(path, { method: opts.method ?? "GET", headers, body });
  };
  if (!accessToken && sessionStorage.getItem(REFRESH_KEY)) await refresh();
  let res = await send();
  if (res.status === 401 && (await refresh())) res = await send();
  if (res.status === 401) {
    const err = await envelope(res);
    dropSession("Your session expired: log in again.");
    throw err;
  }
  if (!res.ok) throw await envelope(res);
  if (res.status === 204) return undefined as T;
  if (opts.text) return (await res.text()) as T;
  const type = res.headers.get("content-type") ?? "";
  if (!type.includes("json")) return (await res.text()) as T;
  return (await res.json()) as T;
}

// Lists come as {"devices":[...]} or a bare array, depending on the route: take either.
export function listOf<T>(body: unknown, key: string): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === "object") {
    const o = body as Record<string, unknown>;
    if (Array.isArray(o[key])) return o[key] as T[];
    if (Array.isArray(o.items)) return o.items as T[];
    if (Array.isArray(o.data)) return o.data as T[];
  }
  return [];
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}

// Query API shape: {"series":[{"measurement","tags":{..},"metric","points":[[ms,v],..]}]}
export interface Series {
  measurement: string;
  tags: Record<string, string>;
  metric: string;
  points: [number, number | string | boolean | null][];
}

export async function query(params: Record<string, string | number | undefined>): Promise<Series[]> {
  const body = await api<{ series: Series[] }>("/api/v1/query" + qs(params));
  return body.series ?? [];
}
