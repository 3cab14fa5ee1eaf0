// The client's state and the rules that keep it true: messages keyed by `seq` (a message seen
// twice, from REST and the socket, or from a resume, is kept once), optimistic sends keyed by
// `client_msg_id` (a retry reuses it, so the server answers the same message), unread counts and
// last messages moved by live frames, a reload when a resume could not recover.
import { Api, ApiError, type Conversation, type Message, type Page, type Profile } from "./api";
import { Realtime, type Frame, type LinkState } from "./realtime";

export interface Pending {
  client_msg_id: string;
  body: string;
  failed: string | null;
}

interface Thread {
  bySeq: Map<number, Message>;
  /** The oldest seq loaded; null before the first page. */
  oldest: number | null;
  moreBefore: boolean;
  pending: Pending[];
}

const PAGE = 50;

/** A fresh `client_msg_id` (randomUUID needs a secure context; getRandomValues does not). */
function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
const TYPING_SHOWN_MS = 6_000;
const TYPING_SEND_EVERY_MS = 2_500;

export class Store {
  readonly api = new Api();
  readonly rt = new Realtime(this.api);
  conversations = new Map<string, Conversation>();
  threads = new Map<string, Thread>();
  profiles = new Map<string, Profile>();
  presence = new Map<string, string>();
  /** conversation -> user -> seq that user has read (others' markers, from `read` frames). */
  reads = new Map<string, Map<string, number>>();
  /** conversation -> whether the signed-in user muted it (known once it was opened). */
  muted = new Map<string, boolean>();
  /** conversation -> user -> until when "typing" shows. */
  typing = new Map<string, Map<string, number>>();
  selected: string | null = null;
  showSettings = false;
  link: LinkState = "offline";
  notifications = 0;
  error: string | null = null;
  notice: string | null = null;
  /** News about the user's conversations, in words (e.g. removed from a group). */
  info: string | null = null;
  private listeners = new Set<() => void>();
  private lastTypingSent = 0;

  constructor() {
    this.rt.onFrame = (f) => this.onFrame(f);
    this.rt.onState = (s) => {
      this.link = s;
      this.changed();
    };
    this.rt.lastSeen = () => {
      const seen: Record<string, number> = {};
      for (const c of this.conversations.values()) seen[c.id] = this.lastSeq(c.id);
      return seen;
    };
    this.api.onSignedOut = (reason) => {
      this.rt.stop();
      this.reset();
      this.notice = reason;
      this.changed();
    };
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed(): void {
    for (const fn of this.listeners) fn();
  }

  get me(): string | null {
    return this.api.tokens?.user_id ?? null;
  }

  /** Runs `fn`, showing an API error in words instead of throwing. */
  async attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      if (this.error !== null) {
        this.error = null;
        this.changed();
      }
      return await fn();
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      this.changed();
      return undefined;
    }
  }

  async start(): Promise<void> {
    if (!this.api.signedIn) return;
    this.notice = null;
    await this.attempt(async () => {
      await this.loadConversations();
      this.rt.start();
      await this.loadNotifications();
    });
    this.changed();
  }

  async signOut(): Promise<void> {
    await this.attempt(() => this.api.logout());
  }

  private reset(): void {
    this.conversations.clear();
    this.threads.clear();
    this.reads.clear();
    this.muted.clear();
    this.typing.clear();
    this.info = null;
    this.selected = null;
    this.showSettings = false;
    this.notifications = 0;
  }

  async loadConversations(): Promise<void> {
    const page = await this.api.call<Page<Conversation>>("GET", "/conversations?limit=100");
    for (const c of page.items) {
      // A cached list may be older than what the socket brought: keep the newer of the two.
      const known = this.conversations.get(c.id);
      if (!known || c.last_seq >= known.last_seq) this.conversations.set(c.id, c);
    }
    await this.loadProfiles([...(this.me ? [this.me] : []), ...page.items.flatMap((c) => c.member_ids)]);
    this.changed();
  }

  async loadConversation(id: string): Promise<void> {
    const c = await this.api.call<Conversation>("GET", `/conversations/${id}`);
    const known = this.conversations.get(id);
    this.conversations.set(id, known ? { ...c, unread_count: known.unread_count, last_seq: Math.max(known.last_seq, c.last_seq) } : c);
    await this.loadProfiles(c.member_ids);
    this.changed();
  }

  async loadNotifications(): Promise<void> {
    const r = await this.api.call<{ count: number }>("GET", "/notifications/unread-count");
    this.notifications = r.count;
  }

  async loadProfiles(ids: string[]): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.profiles.has(id));
    for (let i = 0; i < missing.length; i += 100) {
      const chunk = missing.slice(i, i + 100);
      const page = await this.api.call<Page<Profile>>("GET", `/users?ids=${chunk.join(",")}`);
      for (const p of page.items) this.profiles.set(p.user_id ?? p.id, p);
    }
    await this.loadPresence([...new Set(ids)].filter((id) => !this.presence.has(id)));
  }

  /** Presence of these users now. `presence` frames reach only a user's contacts, so the open
   * conversation's members are asked again from time to time (ConversationView). */
  async loadPresence(ids: string[]): Promise<void> {
    const wanted = ids.filter((id) => id !== this.me).slice(0, 100);
    if (!wanted.length) return;
    const r = await this.api.call<{ items: { user_id: string; status: string }[] }>(
      "GET",
      `/presence?ids=${wanted.join(",")}`,
    );
    for (const p of r.items) this.presence.set(p.user_id, p.status);
    this.changed();
  }

  name(userId: string): string {
    const p = this.profiles.get(userId);
    return p ? p.display_name || p.username : userId.slice(0, 8);
  }

  title(c: Conversation): string {
    if (c.title) return c.title;
    const others = c.member_ids.filter((id) => id !== this.me);
    return others.map((id) => this.name(id)).join(", ") || "Just you";
  }

  thread(id: string): Thread {
    let t = this.threads.get(id);
    if (!t) {
      t = { bySeq: new Map(), oldest: null, moreBefore: true, pending: [] };
      this.threads.set(id, t);
    }
    return t;
  }

  messages(id: string): Message[] {
    return [...this.thread(id).bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The highest seq this client has seen in a conversation (what `resume` sends). */
  lastSeq(id: string): number {
    const t = this.threads.get(id);
    let seq = this.conversations.get(id)?.last_seq ?? 0;
    if (t) for (const s of t.bySeq.keys()) seq = Math.max(seq, s);
    return seq;
  }

  async select(id: string | null): Promise<void> {
    this.selected = id;
    this.showSettings = false;
    this.rt.send({ type: "view", conversation_id: id });
    this.changed();
    if (id === null) return;
    const t = this.thread(id);
    if (t.oldest === null) await this.attempt(() => this.loadLatest(id));
    this.markRead(id);
    await this.attempt(() => this.loadConversationState(id));
  }

  /** Others' read markers from before the page opened (later ones come as `read` frames, and
   * a marker only moves forward), and whether this user muted the conversation. */
  async loadConversationState(id: string): Promise<void> {
    const markers = await this.api.call<{ items: { user_id: string; seq: number }[] }>(
      "GET",
      `/conversations/${id}/read-markers`,
    );
    const users = this.reads.get(id) ?? new Map<string, number>();
    this.reads.set(id, users);
    for (const m of markers.items) users.set(m.user_id, Math.max(users.get(m.user_id) ?? 0, m.seq));
    const mute = await this.api.call<{ muted: boolean }>("GET", `/conversations/${id}/notifications`);
    this.muted.set(id, mute.muted);
    this.changed();
  }

  /** Mute (until unmuted) or unmute one conversation: no notifications, messages still come. */
  async setMuted(id: string, muted: boolean): Promise<void> {
    await this.attempt(async () => {
      const r = await this.api.call<{ muted: boolean }>("PUT", `/conversations/${id}/notifications`, { muted });
      this.muted.set(id, r.muted);
      this.changed();
    });
  }

  /** The latest page, replacing what was loaded (also after an unrecovered resume). */
  async loadLatest(id: string): Promise<void> {
    const page = await this.api.call<Page<Message> & { recovered?: boolean }>(
      "GET",
      `/conversations/${id}/messages?limit=${PAGE}`,
    );
    const t = this.thread(id);
    t.bySeq.clear();
    this.addMessages(id, page.items);
    t.oldest = page.items.length ? page.items[0].seq : null;
    t.moreBefore = page.items.length === PAGE && (t.oldest ?? 0) > 1;
    if (t.oldest === null) t.oldest = 0;
    await this.loadProfiles(page.items.map((m) => m.sender_id));
    this.changed();
  }

  async loadOlder(id: string): Promise<void> {
    const t = this.thread(id);
    if (!t.moreBefore || !t.oldest) return;
    await this.attempt(async () => {
      const page = await this.api.call<Page<Message>>(
        "GET",
        `/conversations/${id}/messages?before=${t.oldest}&limit=${PAGE}`,
      );
      this.addMessages(id, page.items);
      if (page.items.length) t.oldest = Math.min(t.oldest ?? Infinity, page.items[0].seq);
      t.moreBefore = page.items.length === PAGE && (t.oldest ?? 0) > 1;
      await this.loadProfiles(page.items.map((m) => m.sender_id));
      this.changed();
    });
  }

  private addMessages(id: string, items: Message[]): void {
    const t = this.thread(id);
    for (const m of items) {
      t.bySeq.set(m.seq, m);
      if (m.client_msg_id) t.pending = t.pending.filter((p) => p.client_msg_id !== m.client_msg_id);
    }
  }

  /** Post optimistically: shown at once as pending, failed with a reason, retried with its id. */
  async send(id: string, body: string, retryOf?: Pending): Promise<void> {
    const t = this.thread(id);
    const pending = retryOf ?? { client_msg_id: newId(), body, failed: null };
    pending.failed = null;
    if (!retryOf) t.pending.push(pending);
    this.typingStopped(id);
    this.changed();
    try {
      const m = await this.api.call<Message>("POST", `/conversations/${id}/messages`, {
        body: pending.body,
        client_msg_id: pending.client_msg_id,
      });
      this.onPosted(id, m);
    } catch (e) {
      pending.failed = e instanceof ApiError ? e.message : "Not sent.";
      this.changed();
    }
  }

  discard(id: string, pending: Pending): void {
    const t = this.thread(id);
    t.pending = t.pending.filter((p) => p !== pending);
    this.changed();
  }

  async edit(id: string, seq: number, body: string): Promise<void> {
    await this.attempt(async () => {
      const m = await this.api.call<Message>("PATCH", `/conversations/${id}/messages/${seq}`, { body });
      this.thread(id).bySeq.set(m.seq, m);
      this.changed();
    });
  }

  async remove(id: string, seq: number): Promise<void> {
    await this.attempt(async () => {
      const m = await this.api.call<Message>("DELETE", `/conversations/${id}/messages/${seq}`);
      this.thread(id).bySeq.set(m.seq, { ...this.thread(id).bySeq.get(seq)!, ...m, body: "", deleted: true });
      this.changed();
    });
  }

  markRead(id: string): void {
    const c = this.conversations.get(id);
    if (!c || document.hidden) return;
    const seq = this.lastSeq(id);
    if (c.unread_count === 0 && seq === 0) return;
    if (!this.rt.send({ type: "read", conversation_id: id, seq })) {
      void this.attempt(async () => {
        const r = await this.api.call<{ unread_count: number }>("POST", `/conversations/${id}/read`, { seq });
        c.unread_count = r.unread_count;
        this.changed();
      });
    }
  }

  typed(id: string): void {
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (this.rt.send({ type: "typing", conversation_id: id, typing: true })) this.lastTypingSent = now;
  }

  typingStopped(id: string): void {
    if (this.lastTypingSent === 0) return;
    this.lastTypingSent = 0;
    this.rt.send({ type: "typing", conversation_id: id, typing: false });
  }

  typers(id: string): string[] {
    const now = Date.now();
    return [...(this.typing.get(id)?.entries() ?? [])]
      .filter(([user, until]) => until > now && user !== this.me)
      .map(([user]) => this.name(user));
  }

  async searchUsers(prefix: string): Promise<Profile[]> {
    if (!prefix.trim()) return [];
    const page = await this.api.call<Page<Profile>>(
      "GET",
      `/users?prefix=${encodeURIComponent(prefix.trim())}&limit=10`,
    );
    for (const p of page.items) this.profiles.set(p.user_id ?? p.id, p);
    return page.items.filter((p) => (p.user_id ?? p.id) !== this.me);
  }

  async create(memberIds: string[], title: string): Promise<void> {
    await this.attempt(async () => {
      const kind = memberIds.length === 1 && !title ? "direct" : "group";
      const body = kind === "direct" ? { kind, member_ids: memberIds } : { kind, title: title || null, member_ids: memberIds };
      const c = await this.api.call<Conversation>("POST", "/conversations", body);
      this.conversations.set(c.id, c);
      await this.select(c.id);
    });
  }

  async addMember(id: string, userId: string): Promise<void> {
    await this.attempt(async () => {
      const c = await this.api.call<Conversation>("POST", `/conversations/${id}/members`, { member_ids: [userId] });
      this.conversations.set(c.id, { ...this.conversations.get(id), ...c });
      this.changed();
    });
  }

  async removeMember(id: string, userId: string): Promise<void> {
    await this.attempt(async () => {
      await this.api.call("DELETE", `/conversations/${id}/members/${userId}`);
      const c = this.conversations.get(id);
      if (userId === this.me) {
        this.conversations.delete(id);
        if (this.selected === id) this.selected = null;
      } else if (c) c.member_ids = c.member_ids.filter((m) => m !== userId);
      this.changed();
    });
  }

  private onPosted(id: string, m: Message): void {
    const t = this.thread(id);
    const fresh = !t.bySeq.has(m.seq);
    this.addMessages(id, [m]);
    const c = this.conversations.get(id);
    if (c && fresh && m.seq > c.last_seq) {
      c.last_seq = m.seq;
      c.last_message = m;
      if (m.sender_id !== this.me && this.selected !== id) c.unread_count += 1;
    }
    if (m.sender_id !== this.me) this.typing.get(id)?.delete(m.sender_id);
    if (this.selected === id && m.sender_id !== this.me) this.markRead(id);
    this.changed();
  }

  private onFrame(f: Frame): void {
    const id = f.conversation_id as string | undefined;
    switch (f.type) {
      case "ready":
        this.error = null;
        if (this.selected) this.rt.send({ type: "view", conversation_id: this.selected });
        // Conversations created while the socket was down: one list reload per (re)connect.
        void this.attempt(() => this.loadConversations());
        break;
      case "message.posted":
        if (id) {
          if (!this.conversations.has(id)) void this.attempt(() => this.loadConversation(id));
          this.onPosted(id, f.message as Message);
          void this.attempt(() => this.loadProfiles([(f.message as Message).sender_id]));
        }
        break;
      case "message.edited":
      case "message.deleted":
        if (id) {
          const m = f.message as Message;
          const t = this.thread(id);
          const old = t.bySeq.get(m.seq);
          if (old) t.bySeq.set(m.seq, { ...old, ...m });
        }
        break;
      case "resumed":
        if (id && f.recovered === false) {
          const t = this.threads.get(id);
          if (t && t.oldest !== null) void this.attempt(() => this.loadLatest(id));
          void this.attempt(() => this.loadConversations());
        }
        break;
      case "typing":
        if (id) {
          const users = this.typing.get(id) ?? new Map<string, number>();
          this.typing.set(id, users);
          if (f.typing === false) users.delete(f.user_id as string);
          else users.set(f.user_id as string, Date.now() + TYPING_SHOWN_MS);
          window.setTimeout(() => this.changed(), TYPING_SHOWN_MS + 50);
        }
        break;
      case "presence":
        this.presence.set(f.user_id as string, f.status as string);
        break;
      case "read":
        if (id) {
          const users = this.reads.get(id) ?? new Map<string, number>();
          this.reads.set(id, users);
          users.set(f.user_id as string, f.seq as number);
        }
        break;
      case "read.ok": {
        const c = id ? this.conversations.get(id) : undefined;
        if (c) c.unread_count = f.unread_count as number;
        break;
      }
      // The frame itself is applied: a list reload right now may still get the gateway's cached
      // answer (its cache is dropped by an event that can arrive after this frame).
      case "conversation.created":
        if (id && !this.conversations.has(id)) {
          const members = f.member_ids as string[];
          this.conversations.set(id, {
            id,
            kind: f.kind as Conversation["kind"],
            title: (f.title as string | null) ?? null,
            member_ids: members,
            last_seq: 0,
            unread_count: 0,
            last_message: null,
          });
          void this.attempt(() => this.loadProfiles(members));
        }
        break;
      case "member.added":
        if (id && f.user_id === this.me) void this.attempt(() => this.loadConversation(id));
        else if (id) {
          const c = this.conversations.get(id);
          if (c && !c.member_ids.includes(f.user_id as string)) c.member_ids = [...c.member_ids, f.user_id as string];
          void this.attempt(() => this.loadProfiles([f.user_id as string]));
        }
        break;
      case "member.removed":
        if (id && f.user_id === this.me) {
          const gone = this.conversations.get(id);
          if (gone && f.removed_by !== this.me) this.info = `You were removed from ${this.title(gone)}.`;
          this.conversations.delete(id);
          if (this.selected === id) this.selected = null;
        } else if (id) {
          const c = this.conversations.get(id);
          if (c) c.member_ids = c.member_ids.filter((m) => m !== f.user_id);
        }
        break;
      case "notification":
      case "notification.read":
        this.notifications = f.unread_count as number;
        break;
      case "profile.updated":
        this.profiles.set(f.user_id as string, f.profile as Profile);
        break;
    }
    this.changed();
  }
}
