// This device's own decisions, kept locally.
import { h, put } from "../dom";
import { dateTime } from "../format";
import type { HistoryEntry } from "../types";

const decisionLabel: Record<string, string> = { approve: "Approved", deny: "Denied", report: "Reported" };

export function renderHistory(root: HTMLElement, entries: HistoryEntry[]): void {
  put(root, h("h1", {}, "Your decisions"));
  if (entries.length === 0) {
    put(root, h("div", { class: "empty" }, h("h2", {}, "No decisions yet"), h("p", { class: "muted" }, "What you approve, deny or report on this device is listed here.")));
    return;
  }
  put(root, 
    h(
      "table",
      { class: "history", id: "history" },
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Request"), h("th", {}, "Your decision"), h("th", {}, "State after"), h("th", {}, "Fingerprint"))),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            {},
            h("td", { class: "nowrap" }, dateTime(e.at)),
            h("td", {}, h("div", {}, e.title), h("div", { class: "muted small" }, e.headline), e.reason ? h("div", { class: "muted small" }, `Reason: ${e.reason}`) : null),
            h("td", {}, h("span", { class: `pill decision-${e.decision}` }, decisionLabel[e.decision] ?? e.decision)),
            h("td", {}, e.state),
            h("td", { class: "mono nowrap" }, e.fingerprint),
          ),
        ),
      ),
    ),
  );
}
