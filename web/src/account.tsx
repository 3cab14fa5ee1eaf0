// The account part of settings: the profile others see (display name, bio, time zone, avatar
// URL; `PATCH /users/me`) and the password (`POST /auth/password`: the old one stops working,
// the other sessions end, this one goes on).
import { useEffect, useState } from "preact/hooks";
import type { Profile } from "./api";
import type { Store } from "./store";

type ProfileFields = Pick<Profile, "display_name" | "bio" | "time_zone" | "avatar_url">;

export function ProfileForm({ s }: { s: Store }) {
  const [fields, setFields] = useState<ProfileFields | null>(null);
  const [saved, setSaved] = useState("");
  useEffect(() => {
    void s.attempt(async () => setFields(await s.api.call<Profile>("GET", "/users/me")));
  }, []);
  if (fields === null) return <p>Loading the profile…</p>;
  const set = (key: keyof ProfileFields) => (e: Event) =>
    setFields({ ...fields, [key]: (e.currentTarget as HTMLInputElement).value });
  async function save(e: Event) {
    e.preventDefault();
    setSaved("");
    const body = {
      display_name: fields!.display_name.trim(),
      bio: fields!.bio ?? "",
      ...(fields!.time_zone ? { time_zone: fields!.time_zone } : {}),
      ...(fields!.avatar_url ? { avatar_url: fields!.avatar_url } : {}),
    };
    const p = await s.attempt(() => s.api.call<Profile>("PATCH", "/users/me", body));
    if (p) {
      s.profiles.set(p.user_id ?? p.id, p);
      setFields(p);
      setSaved("Profile saved.");
      s.changed();
    }
  }
  return (
    <form onSubmit={save} aria-label="Profile">
      <label>
        Display name
        <input name="display_name" required maxLength={64} value={fields.display_name} onInput={set("display_name")} />
      </label>
      <label>
        About you
        <input name="bio" maxLength={500} value={fields.bio ?? ""} onInput={set("bio")} />
      </label>
      <label>
        Your time zone
        <input name="time_zone" placeholder="Europe/Paris" value={fields.time_zone ?? ""} onInput={set("time_zone")} />
      </label>
      <label>
        Picture URL
        <input name="avatar_url" type="url" value={fields.avatar_url ?? ""} onInput={set("avatar_url")} />
      </label>
      <button type="submit">Save profile</button> <span role="status">{saved}</span>
    </form>
  );
}

export function PasswordForm({ s }: { s: Store }) {
  const [old, setOld] = useState("");
  const [fresh, setFresh] = useState("");
  const [again, setAgain] = useState("");
  const [said, setSaid] = useState("");
  async function change(e: Event) {
    e.preventDefault();
    setSaid("");
    if (fresh !== again) {
      s.error = "The new password and its repetition differ.";
      s.changed();
      return;
    }
    const body = { old_password: old, new_password: fresh };
    const done = await s.attempt(async () => {
      await s.api.call("POST", "/auth/password", body, true);
      return true;
    });
    if (done) {
      setOld("");
      setFresh("");
      setAgain("");
      setSaid("Password changed. Your other sessions have ended.");
    }
  }
  return (
    <form onSubmit={change} aria-label="Change password">
      <label>
        Current password
        <input type="password" autoComplete="current-password" required value={old} onInput={(e) => setOld(e.currentTarget.value)} />
      </label>
      <label>
        New password
        <input type="password" autoComplete="new-password" required value={fresh} onInput={(e) => setFresh(e.currentTarget.value)} />
      </label>
      <label>
        New password again
        <input type="password" autoComplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
      </label>
      <button type="submit">Change password</button> <span role="status">{said}</span>
    </form>
  );
}
