// Warnings about the server itself, shown wherever a decision can be made: its audit history
// went back or changed. Kept apart from refused requests, because it is not about one request.
import { h } from "../dom";
import type { Snapshot } from "../types";

export function auditAlarmBanner(s: Snapshot | null): HTMLElement | null {
  const alarm = s?.audit_alarm;
  if (!alarm) return null;
  return h(
    "div",
    { class: "banner bad", role: "alert", "data-testid": "audit-alarm" },
    h("strong", {}, "The server's audit history does not add up."),
    " ",
    `${capitalised(alarm.message)}.`,
    " ",
    `Noticed at ${new Date(alarm.since * 1000).toLocaleTimeString()}.`,
  );
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
