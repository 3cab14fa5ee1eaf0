// The WebSocket (docs/websocket.md): authenticate with an `auth` frame (the token stays out of the
// URL), `resume` after every `ready`, reconnect with capped, jittered backoff; 4002 refreshes the
// token first, 4001/4003 end the session.
import type { Api } from "./api";

export type Frame = { type: string } & Record<string, unknown>;
export type LinkState = "connecting" | "online" | "reconnecting" | "offline";

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 8_000;
const PING_EVERY_MS = 25_000;

function deviceId(): string {
  let id = sessionStorage.getItem("parley.device");
  if (!id) {
    id = `web-${Math.random().toString(36).slice(2, 12)}`;
    sessionStorage.setItem("parley.device", id);
  }
  return id;
}

export class Realtime {
  state: LinkState = "offline";
  onFrame: (frame: Frame) => void = () => {};
  onState: (state: LinkState) => void = () => {};
  /** The `resume` map to send after `ready`: conversation id -> last seq seen. */
  lastSeen: () => Record<string, number> = () => ({});
  private socket: WebSocket | null = null;
  private attempts = 0;
  private stopped = true;
  private retry: number | undefined;
  private pinger: number | undefined;
  private everReady = false;

  constructor(private readonly api: Api) {}

  start(): void {
    this.stopped = false;
    this.attempts = 0;
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retry);
    window.clearInterval(this.pinger);
    this.socket?.close(1000);
    this.socket = null;
    this.setState("offline");
  }

  send(frame: Frame): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN || this.state !== "online") return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private setState(state: LinkState): void {
    this.state = state;
    this.onState(state);
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState(this.everReady ? "reconnecting" : "connecting");
    let token: string;
    try {
      token = await this.api.accessToken();
    } catch {
      if (this.api.signedIn) this.later();
      return;
    }
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token, device_id: deviceId() }));
    socket.onmessage = (event) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data)) as Frame;
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempts = 0;
        this.everReady = true;
        this.setState("online");
        const seen = this.lastSeen();
        if (Object.keys(seen).length) socket.send(JSON.stringify({ type: "resume", conversations: seen }));
        window.clearInterval(this.pinger);
        this.pinger = window.setInterval(() => this.send({ type: "ping" }), PING_EVERY_MS);
      }
      this.onFrame(frame);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      window.clearInterval(this.pinger);
      if (this.stopped) return;
      if (event.code === 4001 || event.code === 4003) {
        // The session is gone: the next REST call finds out and signs out; do not loop.
        this.api.refresh().then(
          () => this.later(),
          () => this.stop(),
        );
        return;
      }
      if (event.code === 4002) {
        // The socket closes at the exp of the token it was opened with; the client has usually
        // refreshed on its clock already, and then only reconnects.
        const fresh = (this.api.tokens?.expires_at ?? 0) - Date.now() > 30_000;
        (fresh ? Promise.resolve() : this.api.refresh()).then(
          () => void this.open(),
          () => this.later(),
        );
        return;
      }
      this.later();
    };
  }

  private later(): void {
    if (this.stopped) return;
    this.setState(this.everReady ? "reconnecting" : "connecting");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempts);
    this.attempts += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    window.clearTimeout(this.retry);
    this.retry = window.setTimeout(() => void this.open(), delay);
  }
}
