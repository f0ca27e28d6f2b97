// The inbox: pending requests, soonest deadline first; new and changed ones arrive from the
// shell without a refresh, decided and expired ones leave.
import { h, put } from "../dom";
import { timeLeft } from "../format";
import { auditAlarmBanner } from "./alarms";
import type { Context } from "../context";
import type { Snapshot } from "../types";

export function renderInbox(ctx: Context, root: HTMLElement, s: Snapshot): void {
  const now = ctx.now();
  const items = s.inbox.filter((i) => i.approve_by > now);
  put(root, 
    h("h1", {}, "Waiting for you"),
    auditAlarmBanner(s),
    s.refused.length
      ? h(
          "div",
          { class: "banner bad", role: "alert", "data-testid": "refused" },
          h("strong", {}, `${s.refused.length === 1 ? "A pushed request" : `${s.refused.length} pushed requests`} failed verification and ${s.refused.length === 1 ? "is" : "are"} not shown.`),
          " ",
          `Latest: ${s.refused[s.refused.length - 1].reason}. Tell your administrator: the server or the connection may be tampered with.`,
        )
      : null,
  );
  if (items.length === 0) {
    put(root, 
      h(
        "div",
        { class: "empty", "data-testid": "empty" },
        s.refused.length
          ? h("h2", {}, "Nothing verified is waiting")
          : [h("div", { class: "empty-mark", "aria-hidden": "true" }, "✓"), h("h2", {}, "All clear")],
        h(
          "p",
          { class: "muted" },
          s.refused.length
            ? "Requests that fail verification are never shown, so none can be approved here."
            : "Nothing is waiting for your approval. New requests appear here as soon as they are made.",
        ),
      ),
    );
    return;
  }
  put(root, 
    h(
      "ul",
      { class: "inbox", "aria-label": "Pending requests" },
      items.map((i) =>
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", class: "inbox-item", "data-id": i.id, onclick: () => ctx.navigate({ name: "request", id: i.id }) },
            h("span", { class: "item-title" }, i.title),
            h("span", { class: "item-amount" }, i.amount ?? ""),
            h("span", { class: "item-headline" }, i.headline),
            h("span", { class: "item-meta" }, h("span", {}, i.object), h("span", {}, `by ${i.requester}`)),
            h("span", { class: "item-deadline", "data-deadline": String(i.approve_by) }, `${timeLeft(i.approve_by - now)} left`),
            h("span", { class: "item-fp mono" }, i.fingerprint),
          ),
        ),
      ),
    ),
  );
}
