// Typed calls into the Rust shell. The UI holds no key material: the PIN passes through
// `submitPin` once and is not kept.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  CeremonyUpdate,
  Choice,
  DecisionOutcome,
  EnrolledView,
  HistoryEntry,
  KeyChoice,
  NotificationStatus,
  Pending,
  Prefill,
  RequestView,
  ServerIdentity,
  SettingsView,
  ShellError,
  Snapshot,
} from "./types";

export const ipc = {
  snapshot: () => invoke<Snapshot>("snapshot"),
  prefill: () => invoke<Prefill>("prefill"),
  identify: (server: string, code: string) => invoke<ServerIdentity>("identify", { server, code }),
  enroll: (server: string, code: string, key: KeyChoice) =>
    invoke<EnrolledView>("enroll", { server, code, key }),
  request: (id: string) => invoke<RequestView>("request", { id }),
  decide: (id: string, digest: string, choice: Choice) =>
    invoke<DecisionOutcome>("decide", { id, digest, choice }),
  submitPin: (pin: string) => invoke<void>("submit_pin", { pin }),
  cancelCeremony: () => invoke<boolean>("cancel_ceremony"),
  history: () => invoke<HistoryEntry[]>("history"),
  settings: () => invoke<SettingsView>("settings"),
  unenroll: () => invoke<void>("unenroll"),
  painted: () => invoke<void>("painted"),
  notificationStatus: () => invoke<NotificationStatus>("notification_status"),
  pauseNotifications: (until: number | null) => invoke<NotificationStatus>("pause_notifications", { until }),
  onNotifications: (f: (s: NotificationStatus) => void): Promise<UnlistenFn> =>
    listen<NotificationStatus>("notifications", (e) => f(e.payload)),
  takePending: () => invoke<Pending>("take_pending"),
  setStartAtLogin: (on: boolean) => invoke<boolean>("set_start_at_login", { on }),
  quit: () => invoke<void>("quit"),
  onPending: (f: () => void): Promise<UnlistenFn> => listen<null>("pending", () => f()),
  onSnapshot: (f: (s: Snapshot) => void): Promise<UnlistenFn> =>
    listen<Snapshot>("snapshot", (e) => f(e.payload)),
  onCeremony: (f: (u: CeremonyUpdate) => void): Promise<UnlistenFn> =>
    listen<CeremonyUpdate>("ceremony", (e) => f(e.payload)),
};

/// Whatever a command rejected with, as the shell's typed error.
export function asShellError(e: unknown): ShellError {
  if (e && typeof e === "object" && "kind" in e && "message" in e) {
    const o = e as { kind: unknown; code?: unknown; message: unknown };
    return {
      kind: String(o.kind),
      code: typeof o.code === "string" ? o.code : null,
      message: String(o.message),
    };
  }
  return { kind: "internal", code: null, message: String(e) };
}
