import { useEffect, useRef, useState } from "preact/hooks";
import type { Conversation, Message, Profile } from "./api";
import { Settings } from "./settings";
import { Store, type Pending } from "./store";

export const store = new Store();
const PRESENCE_EVERY_MS = 30_000;

function useStore(): Store {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((v) => v + 1)), []);
  return store;
}

export function App() {
  const s = useStore();
  useEffect(() => {
    void s.start();
  }, []);
  if (!s.api.signedIn) return <SignIn />;
  return (
    <div class={`shell ${s.selected || s.showSettings ? "has-selection" : ""}`}>
      <Sidebar />
      <main class="pane" aria-label={s.showSettings ? "Settings" : "Conversation"}>
        {(s.selected || s.showSettings) && <ErrorLine />}
        {s.showSettings ? (
          <Settings s={s} onClose={() => ((s.showSettings = false), s.changed())} />
        ) : s.selected ? (
          <ConversationView id={s.selected} key={s.selected} />
        ) : (
          <p class="empty">Pick a conversation or start one.</p>
        )}
      </main>
    </div>
  );
}

function ErrorLine() {
  const s = useStore();
  if (!s.error) return null;
  return (
    <p role="alert" class="error">
      {s.error}{" "}
      <button type="button" class="link" onClick={() => ((s.error = null), s.changed())}>
        Dismiss
      </button>
    </p>
  );
}

function SignIn() {
  const s = useStore();
  const [mode, setMode] = useState<"login" | "register">("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    const ok = await s.attempt(async () => {
      if (mode === "login") await s.api.login(username, password);
      else await s.api.register(username, password, displayName);
      return true;
    });
    setBusy(false);
    if (ok) await s.start();
  }
  return (
    <main class="signin">
      <h1>Parley</h1>
      <form onSubmit={submit} aria-label={mode === "login" ? "Sign in" : "Create an account"}>
        <h2>{mode === "login" ? "Sign in" : "Create an account"}</h2>
        {s.notice && <p role="status">{s.notice}</p>}
        <label>
          Username
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        {mode === "register" && (
          <label>
            Display name
            <input name="display_name" value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <ErrorLine />
        <button type="submit" disabled={busy}>
          {mode === "login" ? "Sign in" : "Create account"}
        </button>
        <button type="button" class="link" onClick={() => ((s.error = null), setMode(mode === "login" ? "register" : "login"))}>
          {mode === "login" ? "No account? Create one" : "Have an account? Sign in"}
        </button>
      </form>
    </main>
  );
}

function LinkBadge() {
  const s = useStore();
  if (s.link === "online") return <span class="link-state online">Online</span>;
  const words = s.link === "reconnecting" ? "Reconnecting…" : s.link === "connecting" ? "Connecting…" : "Offline";
  return (
    <span role="status" class={`link-state ${s.link}`} data-link={s.link}>
      {words}
    </span>
  );
}

function Sidebar() {
  const s = useStore();
  const [creating, setCreating] = useState(false);
  const convs = [...s.conversations.values()].sort(
    (a, b) => (b.last_message?.created_at ?? "").localeCompare(a.last_message?.created_at ?? "") || b.last_seq - a.last_seq,
  );
  const me = s.me ? s.name(s.me) : "";
  return (
    <nav class="sidebar" aria-label="Conversations">
      <header class="bar">
        <strong>{me}</strong>
        <LinkBadge />
        <button type="button" aria-pressed={s.showSettings} onClick={() => ((s.showSettings = !s.showSettings), s.changed())}>
          Settings <span class="badge" data-testid="notifications">{s.notifications}</span>
          <span class="sr-only"> unread notifications</span>
        </button>
        <button type="button" onClick={() => void s.signOut()}>
          Sign out
        </button>
      </header>
      {!(s.selected || s.showSettings) && <ErrorLine />}
      {s.info && (
        <p role="status" class="info">
          {s.info}{" "}
          <button type="button" class="link" onClick={() => ((s.info = null), s.changed())}>
            Dismiss
          </button>
        </p>
      )}
      <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
        New conversation
      </button>
      {creating && <NewConversation onDone={() => setCreating(false)} />}
      <ul class="conversations">
        {convs.map((c) => (
          <ConversationItem c={c} key={c.id} />
        ))}
      </ul>
    </nav>
  );
}

function ConversationItem({ c }: { c: Conversation }) {
  const s = useStore();
  const last = c.last_message;
  const preview = last ? (last.deleted ? "(deleted)" : `${last.sender_id === s.me ? "You" : s.name(last.sender_id)}: ${last.body}`) : "No messages yet";
  return (
    <li>
      <button
        type="button"
        class={`conversation ${s.selected === c.id ? "selected" : ""}`}
        aria-current={s.selected === c.id ? "true" : undefined}
        data-conversation={c.id}
        onClick={() => void s.select(c.id)}
      >
        <span class="title">
          {s.title(c)}
          {s.muted.get(c.id) && <span class="muted"> (muted)</span>}
        </span>
        {c.unread_count > 0 && (
          <span class="badge unread" aria-label={`${c.unread_count} unread`}>
            {c.unread_count}
          </span>
        )}
        <span class="preview">{preview}</span>
      </button>
    </li>
  );
}

function UserSearch({ onPick, label }: { onPick: (p: Profile) => void; label: string }) {
  const s = useStore();
  const [q, setQ] = useState("");
  const [found, setFound] = useState<Profile[]>([]);
  useEffect(() => {
    const t = window.setTimeout(async () => setFound((await s.attempt(() => s.searchUsers(q))) ?? []), 200);
    return () => window.clearTimeout(t);
  }, [q]);
  return (
    <div class="search">
      <label>
        {label}
        <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="username" />
      </label>
      <ul aria-label="Matching users">
        {found.map((p) => (
          <li key={p.user_id}>
            <button type="button" class="link" onClick={() => (onPick(p), setQ(""))}>
              Add {p.display_name} (@{p.username})
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function NewConversation({ onDone }: { onDone: () => void }) {
  const s = useStore();
  const [members, setMembers] = useState<Profile[]>([]);
  const [title, setTitle] = useState("");
  return (
    <form
      class="new-conversation"
      aria-label="New conversation"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!members.length) return;
        await s.create(
          members.map((m) => m.user_id),
          title,
        );
        onDone();
      }}
    >
      <UserSearch label="Find people" onPick={(p) => setMembers([...members.filter((m) => m.user_id !== p.user_id), p])} />
      <ul aria-label="Chosen people" class="chips">
        {members.map((m) => (
          <li key={m.user_id}>
            {m.display_name}{" "}
            <button type="button" class="link" aria-label={`Remove ${m.display_name}`} onClick={() => setMembers(members.filter((x) => x !== m))}>
              ×
            </button>
          </li>
        ))}
      </ul>
      <label>
        Group title (optional for two)
        <input value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={!members.length}>
        Start
      </button>
    </form>
  );
}

function ConversationView({ id }: { id: string }) {
  const s = useStore();
  const c = s.conversations.get(id);
  const log = useRef<HTMLOListElement>(null);
  const [members, setMembers] = useState(false);
  const messages = s.messages(id);
  const thread = s.thread(id);
  const lastSeq = messages.length ? messages[messages.length - 1].seq : 0;
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lastSeq, thread.pending.length]);
  useEffect(() => {
    const members = () => s.conversations.get(id)?.member_ids ?? [];
    void s.attempt(() => s.loadPresence(members()));
    const timer = window.setInterval(() => void s.attempt(() => s.loadPresence(members())), PRESENCE_EVERY_MS);
    return () => window.clearInterval(timer);
  }, [id]);
  useEffect(() => {
    const visible = () => !document.hidden && s.markRead(id);
    document.addEventListener("visibilitychange", visible);
    return () => document.removeEventListener("visibilitychange", visible);
  }, [id]);
  if (!c) return null;
  const typers = s.typers(id);
  const others = c.member_ids.filter((m) => m !== s.me);
  const online = others.filter((m) => s.presence.get(m) === "online").length;
  const reads = s.reads.get(id);
  return (
    <section class="conversation-view" aria-label={s.title(c)}>
      <header class="bar">
        <button type="button" class="back" onClick={() => void s.select(null)} aria-label="Back to conversations">
          ←
        </button>
        <h2>{s.title(c)}</h2>
        <span class="presence">{others.length === 1 ? (online ? "online" : "offline") : `${online} of ${others.length} online`}</span>
        <button type="button" aria-pressed={s.muted.get(id) ?? false} onClick={() => void s.setMuted(id, !s.muted.get(id))}>
          Mute
        </button>
        {c.kind === "group" && (
          <button type="button" onClick={() => setMembers(!members)} aria-expanded={members}>
            Members
          </button>
        )}
      </header>
      {members && <Members c={c} />}
      <ol
        class="messages"
        ref={log}
        aria-label="Messages"
        aria-live="polite"
        tabIndex={0}
        onScroll={(e) => e.currentTarget.scrollTop === 0 && void s.loadOlder(id)}
      >
        {thread.moreBefore && thread.oldest !== null && (
          <li class="older">
            <button type="button" class="link" onClick={() => void s.loadOlder(id)}>
              Load older messages
            </button>
          </li>
        )}
        {messages.map((m) => (
          <MessageItem m={m} key={m.seq} seenBy={[...(reads?.entries() ?? [])].filter(([u, seq]) => seq === m.seq && u !== s.me).map(([u]) => s.name(u))} />
        ))}
        {thread.pending.map((p) => (
          <PendingItem p={p} id={id} key={p.client_msg_id} />
        ))}
      </ol>
      <p class="typing" aria-live="polite">
        {typers.length ? `${typers.join(", ")} ${typers.length === 1 ? "is" : "are"} typing…` : ""}
      </p>
      <Composer id={id} />
    </section>
  );
}

function Members({ c }: { c: Conversation }) {
  const s = useStore();
  return (
    <div class="members" aria-label="Members">
      <ul>
        {c.member_ids.map((m) => (
          <li key={m}>
            {s.name(m)} {m === s.me ? "(you)" : ""}{" "}
            <button type="button" class="link" onClick={() => void s.removeMember(c.id, m)}>
              {m === s.me ? "Leave" : `Remove ${s.name(m)}`}
            </button>
          </li>
        ))}
      </ul>
      <UserSearch label="Add someone" onPick={(p) => void s.addMember(c.id, p.user_id)} />
    </div>
  );
}

function time(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function MessageItem({ m, seenBy }: { m: Message; seenBy: string[] }) {
  const s = useStore();
  const mine = m.sender_id === s.me;
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(m.body);
  return (
    <li class={`message ${mine ? "mine" : ""}`} data-seq={m.seq}>
      <span class="meta">
        {mine ? "You" : s.name(m.sender_id)} · <time dateTime={m.created_at}>{time(m.created_at)}</time>
        {m.edited_at && !m.deleted ? " · edited" : ""}
      </span>
      {editing ? (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            await s.edit(m.conversation_id, m.seq, text);
            setEditing(false);
          }}
        >
          <label class="sr-only" for={`edit-${m.seq}`}>
            Edit message
          </label>
          <input id={`edit-${m.seq}`} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          <button type="submit">Save</button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <p class="body">{m.deleted ? <em>Message deleted</em> : m.body}</p>
      )}
      {mine && !m.deleted && !editing && (
        <span class="actions">
          <button type="button" class="link" onClick={() => (setText(m.body), setEditing(true))}>
            Edit
          </button>
          <button type="button" class="link" onClick={() => void s.remove(m.conversation_id, m.seq)}>
            Delete
          </button>
        </span>
      )}
      {seenBy.length > 0 && <span class="seen">Seen by {seenBy.join(", ")}</span>}
    </li>
  );
}

function PendingItem({ p, id }: { p: Pending; id: string }) {
  const s = useStore();
  return (
    <li class={`message mine pending ${p.failed ? "failed" : ""}`}>
      <span class="meta">{p.failed ? "Not sent" : "Sending…"}</span>
      <p class="body">{p.body}</p>
      {p.failed && (
        <span class="actions" role="alert">
          {p.failed}{" "}
          <button type="button" onClick={() => void s.send(id, p.body, p)}>
            Retry
          </button>
          <button type="button" class="link" onClick={() => s.discard(id, p)}>
            Discard
          </button>
        </span>
      )}
    </li>
  );
}

function Composer({ id }: { id: string }) {
  const s = useStore();
  const [text, setText] = useState("");
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        const body = text.trim();
        if (!body) return;
        setText("");
        void s.send(id, body);
      }}
    >
      <label class="sr-only" for="composer">
        Message
      </label>
      <input
        id="composer"
        autoComplete="off"
        placeholder="Write a message"
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          if (e.currentTarget.value) s.typed(id);
        }}
        onBlur={() => s.typingStopped(id)}
      />
      <button type="submit">Send</button>
    </form>
  );
}
