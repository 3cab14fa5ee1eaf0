// The REST API (docs/api.md) and the tokens: every call goes through `Api.call`, which refreshes
// the access token shortly before it expires and once more when the gateway answers 401
// `token_expired`, so the person using the client never sees an expiry.

export interface Tokens {
  user_id: string;
  access_token: string;
  refresh_token: string;
  /** Epoch milliseconds at which the access token expires (from `expires_in`). */
  expires_at: number;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  body: string;
  client_msg_id: string | null;
  mentions: string[];
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
}

export interface Conversation {
  id: string;
  kind: "direct" | "group";
  title: string | null;
  member_ids: string[];
  last_seq: number;
  unread_count: number;
  last_message: Message | null;
}

export interface Profile {
  id: string;
  user_id: string;
  username: string;
  display_name: string;
  avatar_url?: string | null;
  bio?: string | null;
  time_zone?: string | null;
}

export interface Page<T> {
  items: T[];
  next: number | string | null;
}

export interface Session {
  id: string;
  created_at: string;
  last_used_at: string | null;
  device: string | null;
  user_agent: string | null;
  current: boolean;
}

/** An error the API answered, in words a person can read. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STORAGE_KEY = "parley.tokens";
/** Refresh this long before expiry (or at 80 % of the lifetime when it is shorter). */
const REFRESH_MARGIN_MS = 60_000;

const WORDS: Record<string, string> = {
  unauthenticated: "Wrong username or password, or the session has ended.",
  conflict: "That is taken already.",
  rate_limited: "Too many attempts: wait a moment and try again.",
  unavailable: "The server is busy or restarting: try again in a moment.",
  forbidden: "You may not do that.",
  not_found: "Not found.",
  payload_too_large: "That is too long.",
};

function describe(code: string, message: string, field?: string): string {
  if (code === "invalid") return field ? `${field}: ${message}` : message;
  return WORDS[code] ?? message ?? "Something went wrong.";
}

function loadTokens(): Tokens | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

export class Api {
  tokens: Tokens | null = loadTokens();
  /** Called when the session ends (logout, revoked, refresh refused). */
  onSignedOut: (reason: string) => void = () => {};
  /** Called after every token change (e.g. the socket reconnects with the new token). */
  onTokens: (tokens: Tokens) => void = () => {};
  private refreshing: Promise<void> | null = null;
  private timer: number | undefined;

  constructor(private readonly base = "/api/v1") {
    this.schedule();
  }

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  async register(username: string, password: string, displayName: string): Promise<void> {
    const body = { username, password, display_name: displayName || username };
    this.store(await this.raw("POST", "/auth/register", body, false));
  }

  async login(username: string, password: string): Promise<void> {
    this.store(await this.raw("POST", "/auth/login", { username, password }, false));
  }

  async logout(): Promise<void> {
    try {
      if (this.tokens) await this.call("POST", "/auth/logout");
    } finally {
      this.clear("You have signed out.");
    }
  }

  /** A fresh access token now (one refresh at a time, shared by every caller). */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** An access token good for at least a few seconds (refreshed first when it is not). */
  async accessToken(): Promise<string> {
    if (!this.tokens) throw new ApiError(401, "unauthenticated", "Not signed in.");
    if (this.tokens.expires_at - Date.now() < 5_000) await this.refresh();
    return this.tokens!.access_token;
  }

  /** A call to the API with the access token. `checksPassword`: a 401 means a wrong password
   * typed into a form (the session goes on), not an ended session. */
  async call<T = unknown>(method: string, path: string, body?: unknown, checksPassword = false): Promise<T> {
    await this.accessToken();
    try {
      return (await this.raw(method, path, body, true)) as T;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && e.code === "token_expired") {
        await this.refresh();
        return (await this.raw(method, path, body, true)) as T;
      }
      if (e instanceof ApiError && e.status === 401 && checksPassword) {
        throw new ApiError(401, "wrong_password", "The current password is wrong.");
      }
      if (e instanceof ApiError && e.status === 401) this.clear(e.message);
      throw e;
    }
  }

  private async doRefresh(): Promise<void> {
    const current = this.tokens;
    if (!current) throw new ApiError(401, "unauthenticated", "Not signed in.");
    try {
      const body = { refresh_token: current.refresh_token };
      this.store(await this.raw("POST", "/auth/refresh", body, false));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.clear("Your session has ended: sign in again.");
      throw e;
    }
  }

  private async raw(method: string, path: string, body: unknown, auth: boolean): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.tokens) headers.Authorization = `Bearer ${this.tokens.access_token}`;
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached: check the connection.");
    }
    if (response.status === 204) return null;
    const data: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const err = (data as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      const code = err?.code ?? "internal";
      throw new ApiError(response.status, code, describe(code, err?.message ?? response.statusText, err?.field));
    }
    return data;
  }

  private store(data: unknown): void {
    const d = data as { user_id: string; access_token: string; refresh_token: string; expires_in: number };
    this.tokens = {
      user_id: d.user_id,
      access_token: d.access_token,
      refresh_token: d.refresh_token,
      expires_at: Date.now() + d.expires_in * 1000,
    };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
    this.schedule();
    this.onTokens(this.tokens);
  }

  private clear(reason: string): void {
    const had = this.tokens !== null;
    this.tokens = null;
    localStorage.removeItem(STORAGE_KEY);
    window.clearTimeout(this.timer);
    if (had) this.onSignedOut(reason);
  }

  /** Refresh before expiry: a margin of a minute, or a fifth of a short lifetime. */
  private schedule(): void {
    window.clearTimeout(this.timer);
    if (!this.tokens) return;
    const left = this.tokens.expires_at - Date.now();
    const margin = Math.min(REFRESH_MARGIN_MS, left / 5);
    this.timer = window.setTimeout(() => {
      this.refresh().catch(() => {
        /* retried on the next call or 401 */
      });
    }, Math.max(0, left - margin));
  }
}
