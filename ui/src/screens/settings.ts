// Settings: the server and its pinned key, the enrolled key, unenroll.
import { h, put } from "../dom";
import type { NotificationStatus, SettingsView } from "../types";

/// Unix seconds of the next local 08:00 after now.
export function tomorrowMorning(nowMs: number): number {
  const d = new Date(nowMs);
  d.setDate(d.getDate() + 1);
  d.setHours(8, 0, 0, 0);
  return Math.floor(d.getTime() / 1000);
}

/// What the settings screen's buttons do.
export interface SettingsActions {
  unenroll: () => void;
  pause: (until: number | null) => void;
  setStartAtLogin: (on: boolean) => void;
  quit: () => void;
}

export function renderSettings(
  root: HTMLElement,
  s: SettingsView,
  actions: Partial<SettingsActions> = {},
  notifications: NotificationStatus = { state: "on" },
): void {
  const { unenroll = () => {}, pause = () => {}, setStartAtLogin = () => {}, quit = () => {} } = actions;
  const row = (label: string, value: Node | string, id?: string) => h("div", { class: "field" }, h("dt", {}, label), h("dd", id ? { id } : {}, value));
  const key = s.key;
  put(root, 
    h("h1", {}, "Settings"),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Server"),
      h(
        "dl",
        { class: "fields" },
        row("Address", h("code", {}, s.server), "s-server"),
        row("Pinned server key", h("span", {}, ...s.server_key_ids.map((k) => h("code", { class: "block" }, k))), "s-key-ids"),
        row("Signs for (RP id)", h("code", {}, s.rp_id)),
        row("Origin", h("code", {}, s.origin)),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "This device"),
      h(
        "dl",
        { class: "fields" },
        row("Approver", s.approver_id, "s-approver"),
        row("Device id", h("code", {}, s.device_id)),
        row("Device key", s.device_key === "keyring" ? "in the system keyring" : h("span", { class: "warn-text" }, "in a plain file (demo/test only; not protected at rest)")),
        row("Profile", h("code", {}, s.profile_path)),
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Security key"),
      h(
        "dl",
        { class: "fields" },
        row("Kind", key.kind === "usb" ? "USB security key (FIDO2)" : h("span", { class: "pill demo" }, "Demo software key — not a hardware key"), "s-key-kind"),
        key.file ? row("Key file", h("code", {}, key.file)) : null,
        row("Algorithm", key.algorithm ?? "not recorded (enrolled before this version)"),
        row("AAGUID (key model)", key.aaguid ? h("code", {}, key.aaguid) : "not recorded (enrolled before this version)", "s-aaguid"),
        key.pin_set !== null ? row("PIN", key.pin_set ? "set" : "not set") : null,
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Notifications"),
      h(
        "p",
        { id: "s-notifications" },
        notifications.state === "on"
          ? "A notification announces each new request. It only opens the request: approving always needs your key."
          : notifications.state === "paused"
            ? `Paused until ${new Date(notifications.until * 1000).toLocaleString()}. Requests that arrive meanwhile are in the inbox, not notified later.`
            : `Unavailable: ${notifications.message}. Requests still arrive in the inbox.`,
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", id: "pause-hour", onclick: () => pause(Math.floor(Date.now() / 1000) + 3600) }, "Pause for 1 hour"),
        h("button", { type: "button", id: "pause-tomorrow", onclick: () => pause(tomorrowMorning(Date.now())) }, "Pause until tomorrow 08:00"),
        notifications.state === "paused" ? h("button", { type: "button", class: "primary", id: "pause-resume", onclick: () => pause(null) }, "Resume") : null,
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Running in the background"),
      s.start_at_login === null
        ? h("p", { class: "muted", id: "s-start-at-login" }, "This system cannot tell whether Countersign starts at login.")
        : h(
            "label",
            { class: "check", id: "s-start-at-login" },
            h("input", {
              type: "checkbox",
              id: "start-at-login",
              checked: s.start_at_login,
              onchange: (e: Event) => setStartAtLogin((e.target as HTMLInputElement).checked),
            }),
            " Start Countersign in the tray when I log in, so requests reach me without opening it",
          ),
      h(
        "p",
        { class: "muted" },
        "Closing the window keeps Countersign running in the tray, where requests still arrive. To stop it, use Quit in the tray menu or here.",
      ),
      h("div", { class: "actions" }, h("button", { type: "button", id: "quit", onclick: quit }, "Quit Countersign")),
    ),
    h(
      "section",
      { class: "card danger-zone" },
      h("h2", {}, "Unenroll"),
      h("p", { class: "muted" }, "Removes the device key, the profile and the local history from this computer. Ask your administrator to disable the device on the server too."),
      h("button", { type: "button", class: "danger", id: "unenroll", onclick: unenroll }, "Unenroll this device…"),
    ),
  );
}
