// The shapes the Rust shell sends (src-tauri/src/views.rs, desk.rs, ceremony.rs, error.rs).

export type Connection =
  | { state: "not_enrolled" }
  | { state: "connecting" }
  | { state: "connected"; since: number }
  | { state: "reconnecting"; retry_at: number; offline_since: number }
  | { state: "refused"; message: string };

export interface ShellError {
  kind: string;
  code: string | null;
  message: string;
}

export interface EnrolledView {
  approver_id: string;
  server: string;
  soft_key: boolean;
}

export interface InboxItem {
  id: string;
  title: string;
  headline: string;
  amount: string | null;
  object: string;
  requester: string;
  approve_by: number;
  fingerprint: string;
}

export interface Snapshot {
  enrolled: EnrolledView | null;
  profile_problem: ShellError | null;
  connection: Connection;
  inbox: InboxItem[];
  /// Refused pushed requests, one entry per request (by the id the push claims).
  refused: { at: number; request: string | null; reason: string }[];
  /// The server's audit history went back or changed.
  audit_alarm: { since: number; message: string } | null;
  now: number;
}

export interface ChangeLine {
  field: string;
  before: string;
  after: string;
}

export interface DisplayModel {
  id: string;
  title: string;
  headline: string;
  action: string;
  object: string;
  amount: string | null;
  scope: string | null;
  changes: ChangeLine[];
  requester: string;
  audience: string;
  session: string;
  reason: string;
  /** One line per requirement: the requester's own confirmation, then each group's count. */
  progress: string[];
  /// Approvals counted so far by others than the requester, oldest first.
  approvals: { approver_id: string; at: number; text: string }[];
  user_verification: boolean;
  approve_by: string;
  seconds_left: number;
  fingerprint: string;
  state: string;
  /// Characters that could make a field read differently from what is signed.
  warnings: TextWarning[];
}

export interface TextWarning {
  field: string;
  kind: "invisible" | "control" | "mixed_scripts" | "looks_like_ascii";
  code_points: string[];
  message: string;
}

export interface RequestView {
  model: DisplayModel;
  requester_id: string;
  requester_kind: string;
  approved_by: string[];
  digest: string;
  digest_hex: string;
  canonical: string;
  approve_by: number;
  soft_key: boolean;
}

export type Stage =
  | "waiting_for_key"
  | "touch"
  | "select_key"
  | "pin"
  | "wrong_pin"
  | "pin_auth_blocked"
  | "pin_blocked"
  | "pin_not_set"
  | "uv_failed"
  | "uv_blocked"
  | "sending";

export interface CeremonyUpdate {
  stage: Stage;
  message: string;
  retries_left: number | null;
}

export type Choice =
  | { kind: "approve" }
  | { kind: "deny"; reason: string | null }
  | { kind: "report"; reason: string };

export interface DecisionOutcome {
  id: string;
  decision: "approve" | "deny" | "report";
  state: string;
  fingerprint: string;
}

export interface ServerIdentity {
  server: string;
  name: string;
  version: string;
  rp_id: string;
  origin: string;
  key_id: string;
}

export type KeyChoice = { kind: "usb" } | { kind: "demo_software"; pin: string | null };

export interface HistoryEntry {
  at: number;
  id: string;
  title: string;
  headline: string;
  decision: string;
  reason: string | null;
  fingerprint: string;
  state: string;
}

export interface SettingsView {
  server: string;
  rp_id: string;
  origin: string;
  server_key_ids: string[];
  approver_id: string;
  device_id: string;
  device_key: "keyring" | "insecure_file";
  key: {
    kind: "usb" | "demo_software";
    file: string | null;
    algorithm: string | null;
    aaguid: string | null;
    pin_set: boolean | null;
  };
  profile_path: string;
  /// Whether the app starts at login; null when the system cannot tell.
  start_at_login: boolean | null;
}

/// What waits for the window (from the tray, a notification, a link or a second launch).
export interface Pending {
  request: string | null;
  prefill_changed: boolean;
  notice: string | null;
}

export interface Prefill {
  server: string | null;
  code: string | null;
}

export type NotificationStatus =
  | { state: "on" }
  | { state: "paused"; until: number }
  | { state: "unavailable"; message: string };
