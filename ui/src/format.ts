// Formatting shared by the screens: time left, times of day, connection, errors.
import type { Connection, ShellError } from "./types";

/// "14 min 05 s", "2 h 03 min", "45 s", or "expired".
export function timeLeft(seconds: number): string {
  if (seconds <= 0) return "expired";
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(s / 3600);
  return `${h} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/// "just now", "3 min ago", "2 h ago", "3 days ago" (as the approver crate words it).
export function ago(at: number, now: number): string {
  const s = Math.max(0, Math.floor(now - at));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

/// Local time of day with seconds, e.g. "14:03:27".
export function clock(unix: number): string {
  const d = new Date(unix * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/// Local date and time, e.g. "2026-12-01 14:03".
export function dateTime(unix: number): string {
  const d = new Date(unix * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

export interface ConnectionLabel {
  tone: "ok" | "warn" | "bad" | "idle";
  text: string;
}

export function connectionLabel(c: Connection, now: number): ConnectionLabel {
  switch (c.state) {
    case "connected":
      return { tone: "ok", text: "Connected" };
    case "connecting":
      return { tone: "idle", text: "Connecting…" };
    case "not_enrolled":
      return { tone: "idle", text: "Not enrolled" };
    case "refused":
      return { tone: "bad", text: `Refused by the server: ${c.message}` };
    case "reconnecting": {
      const wait = Math.max(0, Math.ceil(c.retry_at - now));
      const retry = wait > 0 ? `reconnecting in ${wait} s` : "reconnecting…";
      return { tone: "warn", text: `Offline since ${clock(c.offline_since)} — ${retry}` };
    }
  }
}

/// What to tell the person about a failed command, by the shell's error kind.
export function errorText(e: ShellError): { title: string; detail: string } {
  const titles: Record<string, string> = {
    cancelled: "Cancelled",
    timed_out: "The security key timed out",
    pin_auth_blocked: "Too many wrong PINs",
    pin_blocked: "PIN blocked",
    pin_not_set: "This key has no PIN",
    unknown_credential: "This key is not enrolled here",
    no_key_found: "No security key found",
    key: "Security key error",
    not_pending: "No longer waiting for you",
    changed: "The request changed",
    expired: "Expired",
    busy: "A security key operation is already running",
    server_refused: "The server refused",
    server_unreachable: "Cannot reach the server",
    server_not_trusted: "Server not trusted",
    no_keyring: "No keyring to keep the device key",
    invalid_code: "Not an enrollment code",
    invalid: "Please check what you entered",
    already_enrolled: "Already enrolled",
    not_enrolled: "Not enrolled",
    unverified: "Request refused",
    storage: "Cannot read or write local data",
  };
  return { title: titles[e.kind] ?? "Something went wrong", detail: e.message };
}
