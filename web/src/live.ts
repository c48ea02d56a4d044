// The live WebSocket (/api/v1/live): authenticates with the first message, subscribes, and
// reconnects with backoff. When the server has no live endpoint (or the socket keeps
// failing) the caller is told, and pages fall back to polling the query API.
import { refresh, token } from "./api";

export type LiveState = "connecting" | "live" | "unavailable" | "closed";

export interface TelemetryMessage {
  type: "telemetry";
  device: string;
  metric: string;
  points: [number, number][];
}

export interface AlarmMessage {
  type: "alarm";
  event: string;
  alarm: Record<string, unknown>;
}

export interface Subscription {
  telemetry?: { devices?: string[]; assets?: string[] };
  alarms?: boolean;
}

export class LiveClient {
  private ws: WebSocket | null = null;
  private closed = false;
  private failures = 0;
  private timer: number | undefined;

  constructor(
    private sub: Subscription,
    private onMessage: (m: TelemetryMessage | AlarmMessage) => void,
    private onState: (s: LiveState, detail?: string) => void,
  ) {
    this.connect();
  }

  private async connect() {
    if (this.closed) return;
    if (!token()) await refresh();
    const t = token();
    if (!t) {
      this.onState("unavailable", "not logged in");
      return;
    }
    this.onState("connecting");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/live";
    let opened = false;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: "auth", token: t }));
      ws.send(JSON.stringify({ type: "subscribe", ...this.sub }));
    };
    ws.onmessage = (ev) => {
      try {
        const m = JSON.parse(String(ev.data));
        if (m.type === "telemetry" || m.type === "alarm") this.onMessage(m);
        else if (m.type === "authenticated" || m.type === "subscribed") {
          this.failures = 0;
          this.onState("live");
        } else if (m.type === "error") this.onState("live", m.message ?? "server error");
      } catch {
        /* a frame we do not understand is ignored, not fatal */
      }
    };
    ws.onclose = (ev) => {
      this.ws = null;
      if (this.closed) return;
      this.failures++;
      const reason = ev.reason ? `${ev.code} ${ev.reason}` : `code ${ev.code}`;
      if (!opened && this.failures >= 2) {
        this.onState("unavailable", "the live endpoint did not answer (" + reason + ")");
        // Try again now and then: the server may gain the endpoint or come back.
        this.timer = window.setTimeout(() => this.connect(), 30000);
        return;
      }
      this.onState("connecting", "reconnecting after " + reason);
      const delay = Math.min(30000, 500 * 2 ** Math.min(this.failures, 6)) * (0.5 + Math.random() / 2);
      this.timer = window.setTimeout(async () => {
        if (ev.code === 1008) await refresh();
        this.connect();
      }, delay);
    };
  }

  close() {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000, "page closed");
    this.onState("closed");
  }
}
