// The console's only way to the server: call(operation, request) posts the
// request to the operation's generated route with the access token in the
// Authorization header. Tokens live in memory and sessionStorage (gone when
// the tab closes), never in a URL, a cookie or a log line; with no cookie
// there is nothing for a cross-site request to ride on.
import { routes, type Operations, type v1Tokens } from "./generated";

export type { Operations };
/** Response is what operation K answers. */
export type Response<K extends keyof Operations> = Operations[K]["response"];
/** Item is the element type of an array field of a response. */
export type Item<T> = NonNullable<T> extends Array<infer E> ? E : never;

/** FieldViolation is one google.rpc.BadRequest entry of an error. */
export interface FieldViolation {
  field: string;
  description: string;
  reason?: string;
}

/** An error the API answered: the gRPC code, its message and field violations. */
export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: number,
    message: string,
    readonly violations: FieldViolation[] = [],
  ) {
    super(message);
  }
  get unauthenticated(): boolean {
    return this.code === 16;
  }
  get notFound(): boolean {
    return this.code === 5;
  }
  get denied(): boolean {
    return this.code === 7;
  }
  get exhausted(): boolean {
    return this.code === 8;
  }
}

const storeKey = "ecogrid.session";

export interface Session {
  tokens: v1Tokens;
  personId: string;
}

let session: Session | null = (() => {
  try {
    return JSON.parse(sessionStorage.getItem(storeKey) ?? "null") as Session | null;
  } catch {
    return null;
  }
})();

const listeners = new Set<() => void>();
export function onSessionChange(f: () => void): void {
  listeners.add(f);
}
export function currentSession(): Session | null {
  return session;
}
export function setSession(s: Session | null): void {
  session = s;
  if (s) sessionStorage.setItem(storeKey, JSON.stringify(s));
  else sessionStorage.removeItem(storeKey);
  listeners.forEach((f) => f());
}

type StatusBody = { code?: number; message?: string; details?: Array<{ "@type"?: string; fieldViolations?: FieldViolation[] }> };

/** apiError is the ApiError of a gRPC status body. */
function apiError(httpStatus: number, st: StatusBody, fallback: string): ApiError {
  const violations = (st.details ?? []).flatMap((d) => (d["@type"]?.endsWith("google.rpc.BadRequest") ? (d.fieldViolations ?? []) : []));
  return new ApiError(httpStatus, st.code ?? 2, st.message ?? fallback, violations);
}

/** send posts a body to an operation's route, with the token in the Authorization header only. */
function send(op: keyof Operations, body: string, token?: string): Promise<globalThis.Response> {
  const headers: Record<string, string> = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  return fetch("/api" + routes[op], { method: "POST", headers, body, credentials: "omit" });
}

async function post<K extends keyof Operations>(op: K, body: Operations[K]["request"], token?: string): Promise<Operations[K]["response"]> {
  const res = await send(op, JSON.stringify(body ?? {}), token);
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : {};
  if (!res.ok) {
    throw apiError(res.status, json as StatusBody, res.statusText);
  }
  return json as Operations[K]["response"];
}

/**
 * upload sends a client stream: the messages one after another as
 * newline-separated JSON in one request (grpc-gateway's form of a client
 * stream), answered by the one response.
 */
export async function upload<K extends keyof Operations>(op: K, messages: Array<Operations[K]["request"]>): Promise<Operations[K]["response"]> {
  const res = await send(op, messages.map((m) => JSON.stringify(m)).join("\n"), session?.tokens.accessToken);
  const json = (await res.json()) as StatusBody & { error?: StatusBody };
  const err = !res.ok ? json : json.error;
  if (err) throw apiError(res.status, err, res.statusText);
  return json as Operations[K]["response"];
}

/**
 * download reads a server stream: grpc-gateway's newline-separated
 * {"result": message} objects, returned as they come (the operation's
 * response type is that wrapper). An error in the stream ({"error":
 * status}) throws like a refused call.
 */
export async function download<K extends keyof Operations>(op: K, body: Operations[K]["request"]): Promise<Array<Operations[K]["response"]>> {
  const res = await send(op, JSON.stringify(body ?? {}), session?.tokens.accessToken);
  const text = await res.text();
  if (!res.ok) throw apiError(res.status, (text ? JSON.parse(text) : {}) as StatusBody, res.statusText);
  const out: Array<Operations[K]["response"]> = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as Operations[K]["response"] & { error?: StatusBody };
    if (m.error) throw apiError(res.status, m.error, "stream failed");
    out.push(m);
  }
  return out;
}

/** base64Bytes decodes a protobuf bytes field as JSON carries it. */
export function base64Bytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** saveFile offers bytes to the user as a download (no URL carries a token). */
export function saveFile(name: string, type: string, parts: BlobPart[]): void {
  const url = URL.createObjectURL(new Blob(parts, { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

let refreshing: Promise<boolean> | null = null;

/** refresh renews the access token with the refresh token, once at a time. */
export function refresh(): Promise<boolean> {
  const s = session;
  if (!s?.tokens.refreshToken) return Promise.resolve(false);
  refreshing ??= post("AuthService_Refresh", { refreshToken: s.tokens.refreshToken })
    .then((r) => {
      if (!r.tokens) return false;
      setSession({ ...s, tokens: r.tokens });
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/**
 * call sends one request as the signed-in user. An expired access token is
 * renewed once with the refresh token; a refused refresh signs the user out.
 */
export async function call<K extends keyof Operations>(op: K, body: Operations[K]["request"]): Promise<Operations[K]["response"]> {
  try {
    return await post(op, body, session?.tokens.accessToken);
  } catch (e) {
    if (!(e instanceof ApiError) || !e.unauthenticated || !session) throw e;
    if (!(await refresh())) {
      setSession(null);
      throw e;
    }
    return post(op, body, session?.tokens.accessToken);
  }
}

/** login exchanges a username and password for a session. */
export async function login(username: string, password: string): Promise<void> {
  const r = await post("AuthService_Login", { username, password, device: "console" });
  if (!r.tokens) throw new ApiError(500, 13, "no tokens");
  setSession({ tokens: r.tokens, personId: r.personId ?? "" });
}

/** logout ends the session on the server, then forgets it here. */
export async function logout(): Promise<void> {
  try {
    await post("AuthService_Logout", {}, session?.tokens.accessToken);
  } finally {
    setSession(null);
  }
}

/** newRequestId makes the client-generated id every step takes. */
export function newRequestId(): string {
  return crypto.randomUUID();
}
