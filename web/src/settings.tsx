// The account screen: notifications (list, mark all read), signed-in sessions (end one),
// notification preferences (level, do-not-disturb hours, webhook), the profile and the password.
import { useEffect, useState } from "preact/hooks";
import { PasswordForm, ProfileForm } from "./account";
import type { Page, Session } from "./api";
import type { Store } from "./store";

interface Notification {
  id: string;
  kind: string;
  conversation_id: string | null;
  sender_id: string | null;
  preview?: string | null;
  read: boolean;
  created_at: string;
}

interface Preferences {
  level?: "all" | "mentions" | "none";
  dnd_start?: string | null;
  dnd_end?: string | null;
  time_zone?: string;
  webhook_url?: string | null;
}

export function Settings({ s, onClose }: { s: Store; onClose: () => void }) {
  const [notes, setNotes] = useState<Notification[]>([]);
  const [sessions, setSessions] = useState<Session[]>([]);
  // null until loaded: the form shows only then, so nothing typed is overwritten by the load.
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [saved, setSaved] = useState("");
  async function load() {
    await s.attempt(async () => {
      setNotes((await s.api.call<Page<Notification>>("GET", "/notifications?limit=50")).items);
      setSessions((await s.api.call<Page<Session>>("GET", "/auth/sessions")).items);
      setPrefs(await s.api.call<Preferences>("GET", "/notifications/preferences"));
    });
  }
  useEffect(() => {
    void load();
  }, [s.notifications]);
  async function save(e: Event) {
    e.preventDefault();
    setSaved("");
    if (!prefs) return;
    const dnd = prefs.dnd_start && prefs.dnd_end;
    const body = {
      level: prefs.level ?? "all",
      time_zone: prefs.time_zone || "UTC",
      ...(dnd ? { dnd_start: prefs.dnd_start, dnd_end: prefs.dnd_end } : { clear_dnd: true }),
      ...(prefs.webhook_url ? { webhook_url: prefs.webhook_url } : { clear_webhook: true }),
    };
    const r = await s.attempt(() => s.api.call<Preferences>("PUT", "/notifications/preferences", body));
    if (r) {
      setPrefs(r);
      setSaved("Saved.");
    }
  }
  return (
    <section class="settings" aria-label="Settings">
      <header class="bar">
        <button type="button" class="back" onClick={onClose} aria-label="Back to conversations">
          ←
        </button>
        <h2>Settings</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      <h3>Notifications</h3>
      <button
        type="button"
        onClick={() => void s.attempt(() => s.api.call("POST", "/notifications/read", { all: true })).then(load)}
      >
        Mark all read
      </button>
      <ul class="notifications" aria-label="Notifications">
        {notes.length === 0 && <li>Nothing new.</li>}
        {notes.map((n) => (
          <li key={n.id} class={n.read ? "" : "unread"}>
            {n.read ? "" : "● "}
            {n.sender_id ? s.name(n.sender_id) : n.kind}: {n.preview ?? n.kind}
          </li>
        ))}
      </ul>
      <h3>Preferences</h3>
      {prefs === null ? (
        <p>Loading preferences…</p>
      ) : (
      <form onSubmit={save} aria-label="Notification preferences">
        <label>
          Notify me about
          <select value={prefs.level ?? "all"} onChange={(e) => setPrefs({ ...prefs, level: e.currentTarget.value as Preferences["level"] })}>
            <option value="all">every message</option>
            <option value="mentions">mentions only</option>
            <option value="none">nothing (mute)</option>
          </select>
        </label>
        <fieldset>
          <legend>Do not disturb (leave empty for none)</legend>
          <label>
            From
            <input type="time" value={prefs.dnd_start ?? ""} onInput={(e) => setPrefs({ ...prefs, dnd_start: e.currentTarget.value })} />
          </label>
          <label>
            Until
            <input type="time" value={prefs.dnd_end ?? ""} onInput={(e) => setPrefs({ ...prefs, dnd_end: e.currentTarget.value })} />
          </label>
          <label>
            Time zone
            <input value={prefs.time_zone ?? "UTC"} onInput={(e) => setPrefs({ ...prefs, time_zone: e.currentTarget.value })} />
          </label>
        </fieldset>
        <label>
          Webhook URL
          <input type="url" value={prefs.webhook_url ?? ""} onInput={(e) => setPrefs({ ...prefs, webhook_url: e.currentTarget.value })} />
        </label>
        <button type="submit">Save preferences</button> <span role="status">{saved}</span>
      </form>
      )}
      <h3>Profile</h3>
      <ProfileForm s={s} />
      <h3>Password</h3>
      <PasswordForm s={s} />
      <h3>Sessions</h3>
      <ul class="sessions" aria-label="Sessions">
        {sessions.map((x) => (
          <li key={x.id}>
            {x.user_agent ?? x.device ?? "unknown device"} — since {new Date(x.created_at).toLocaleString()}
            {x.current ? (
              " (this one)"
            ) : (
              <button
                type="button"
                class="link"
                onClick={() => void s.attempt(() => s.api.call("DELETE", `/auth/sessions/${x.id}`)).then(load)}
              >
                End this session
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
