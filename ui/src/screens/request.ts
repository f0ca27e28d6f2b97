// The exact request: rendered only from the verified, signed transaction the shell holds.
// Every signed field on its own line, each change as before → after, the live countdown and
// the fingerprint the requester can compare; one click shows the canonical JSON whose digest
// the key signs. Approve, deny and report carry back the digest that was shown.
import { h, clear, put } from "../dom";
import { asShellError, ipc } from "../ipc";
import { ago, errorText, timeLeft } from "../format";
import { openModal } from "../dialog";
import { auditAlarmBanner } from "./alarms";
import type { Context } from "../context";
import type { Choice, DecisionOutcome, DisplayModel, RequestView, ShellError } from "../types";

export class RequestScreen {
  private view: RequestView | null = null;
  private gone: "decided" | null = null;
  private rawOpen = false;
  private error: ShellError | null = null;
  /// The audit alarm this screen shows (the snapshot's when it was drawn).
  private alarmShown: string | null = null;

  constructor(
    private ctx: Context,
    private root: HTMLElement,
    readonly id: string,
  ) {}

  async load(): Promise<void> {
    try {
      this.view = await ipc.request(this.id);
      this.error = null;
    } catch (e) {
      const err = asShellError(e);
      if (err.kind === "not_pending") this.gone = "decided";
      else this.error = err;
    }
    this.render();
  }

  /// The inbox changed: refresh what others did, or mark the request as gone.
  async refresh(): Promise<void> {
    if (this.ctx.ceremony.isOpen || document.querySelector(".confirm")) return;
    const s = this.ctx.snapshot();
    if (!s) return;
    if ((s.audit_alarm?.message ?? null) !== this.alarmShown) this.render();
    if (!s.inbox.some((i) => i.id === this.id)) {
      if (this.gone === null && this.view && this.secondsLeft() > 0) {
        this.gone = "decided";
        this.render();
      }
      return;
    }
    try {
      const fresh = await ipc.request(this.id);
      if (JSON.stringify(fresh.approved_by) !== JSON.stringify(this.view?.approved_by) || fresh.digest !== this.view?.digest) {
        this.view = fresh;
        this.render();
      }
    } catch {
      /* the next snapshot says what happened */
    }
  }

  private secondsLeft(): number {
    return this.view ? this.view.approve_by - this.ctx.now() : 0;
  }

  /// Called every second: the countdown, and expiry.
  tick(): void {
    const left = this.secondsLeft();
    const el = this.root.querySelector<HTMLElement>("#countdown");
    if (el) el.textContent = left > 0 ? `${timeLeft(left)} left to decide` : "Expired";
    const now = this.ctx.now();
    for (const a of this.root.querySelectorAll<HTMLElement>("[data-approved-at]")) {
      a.textContent = `${a.dataset.who} approved ${ago(Number(a.dataset.approvedAt), now)}`;
    }
    if (left <= 0 && this.view && !this.root.querySelector(".expired-banner")) this.render();
  }

  private renders = 0;

  render(): void {
    clear(this.root);
    // A render counter, so automation can tell a fresh screen from the one it clicked.
    this.root.dataset.renders = String(++this.renders);
    const back = h("button", { type: "button", class: "link back", onclick: () => this.ctx.navigate({ name: "inbox" }) }, "← Inbox");
    if (this.error) {
      const t = errorText(this.error);
      put(this.root, back, h("div", { class: "banner bad", role: "alert" }, h("strong", {}, t.title), " ", t.detail));
      return;
    }
    if (!this.view) {
      put(this.root, 
        back,
        h("div", { class: "banner info", role: "status", "data-testid": "gone" }, "This request is no longer waiting for you: it was decided, withdrawn or has expired."),
      );
      return;
    }
    const v = this.view;
    const m = v.model;
    const expired = this.secondsLeft() <= 0;
    const closed = expired || this.gone !== null;
    const snapshot = this.ctx.snapshot();
    this.alarmShown = snapshot?.audit_alarm?.message ?? null;
    put(this.root, 
      back,
      auditAlarmBanner(snapshot),
      h(
        "header",
        { class: "request-head" },
        h("div", { class: "eyebrow" }, m.title),
        h("h1", { id: "headline" }, ...visible(m, m.headline)),
        h(
          "div",
          { class: "head-meta" },
          h("span", { id: "countdown", class: expired ? "pill bad" : "pill warn", role: "timer" }, expired ? "Expired" : `${timeLeft(this.secondsLeft())} left to decide`),
          h("span", { class: "pill" }, `Fingerprint `, h("code", { id: "fingerprint" }, m.fingerprint)),
        ),
      ),
      expired ? h("div", { class: "banner bad expired-banner", role: "alert", "data-testid": "expired" }, "This request has expired. It can no longer be approved, denied or reported.") : null,
      !expired && this.gone ? h("div", { class: "banner info", role: "status", "data-testid": "gone" }, "This request is no longer waiting for you: it was decided or withdrawn.") : null,
      v.soft_key ? h("div", { class: "banner demo" }, "Demo software key: this device signs with a software key for demonstrations, not a hardware security key.") : null,
      m.warnings.length
        ? h(
            "div",
            { class: "banner bad text-warnings", role: "alert", id: "text-warnings" },
            h("strong", {}, "Look closely: this request holds characters that can make it read differently from what your key signs."),
            h("ul", {}, ...m.warnings.map((w) => h("li", { "data-field": w.field, "data-kind": w.kind }, w.message))),
            h("p", {}, "Do not approve unless you know why they are there; ask the requester, or report the request."),
          )
        : null,
      this.fields(v),
      this.actions(v, closed),
      this.raw(v),
    );
  }

  private fields(v: RequestView): HTMLElement {
    const m = v.model;
    const row = (label: string, value: Node | string, id?: string) =>
      h("div", { class: "field" }, h("dt", {}, label), h("dd", id ? { id } : {}, value));
    const changes = m.changes.length
      ? h(
          "table",
          { class: "diff", id: "changes" },
          h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Before"), h("th", { "aria-hidden": "true" }), h("th", {}, "After"))),
          h(
            "tbody",
            {},
            m.changes.map((c) =>
              h("tr", {}, h("td", { class: "mono" }, ...visible(m, c.field)), h("td", { class: "before mono" }, h("del", {}, ...visible(m, c.before))), h("td", { class: "arrow", "aria-label": "becomes" }, "→"), h("td", { class: "after mono" }, h("ins", {}, ...visible(m, c.after)))),
            ),
          ),
        )
      : null;
    const now = this.ctx.now();
    const approvals = m.approvals.map((a) => h("span", { class: "approval", "data-approved-at": String(a.at), "data-who": a.approver_id }, `${a.approver_id} approved ${ago(a.at, now)}`));
    return h(
      "div",
      {},
      h(
        "section",
        { class: "card", "aria-labelledby": "signed-title" },
        h("h2", { id: "signed-title" }, "What your key will sign"),
        h(
          "dl",
          { class: "fields" },
          row("Action", h("code", {}, m.action), "f-action"),
          row("Object", h("code", {}, ...visible(m, m.object)), "f-object"),
          m.amount ? row("Amount", h("span", { class: "amount" }, m.amount), "f-amount") : null,
          m.scope ? row("Scope", h("code", {}, ...visible(m, m.scope)), "f-scope") : null,
          changes ? row(m.changes.length === 1 ? "Change" : "Changes", changes) : null,
          row("Requested by", h("span", {}, v.requester_id, " ", h("span", { class: `kind kind-${v.requester_kind.replace(/\s/g, "-").toLowerCase()}` }, v.requester_kind)), "f-requester"),
          row("Will be executed by", h("code", {}, m.audience), "f-audience"),
          row("Requester's session", h("code", {}, m.session), "f-session"),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "why-title" },
        h("h2", { id: "why-title" }, "Why you are asked"),
        h(
          "dl",
          { class: "fields" },
          row("Policy", h("span", {}, ...visible(m, m.reason)), "f-reason"),
          row(
            "Approvals",
            h(
              "div",
              {},
              ...(m.progress.length ? m.progress : ["—"]).map((line) => h("div", { class: "progress-line" }, line)),
              approvals.length ? h("div", { class: "muted approvals" }, ...approvals.flatMap((a, i) => (i ? [", ", a] : [a]))) : null,
            ),
            "f-progress",
          ),
          row("Your key", m.user_verification ? "will ask for your PIN (user verification required)" : "needs a touch (no PIN required)", "f-uv"),
          row("Deadline", h("span", {}, m.approve_by.replace("T", " ").replace("Z", " UTC")), "f-deadline"),
        ),
      ),
    );
  }

  private actions(v: RequestView, closed: boolean): HTMLElement {
    const approve = h("button", { type: "button", class: "primary big", id: "approve", disabled: closed, onclick: () => this.decide({ kind: "approve" }) }, v.soft_key ? "Approve with the demo key" : "Approve with security key");
    const deny = h("button", { type: "button", id: "deny", disabled: closed, onclick: () => this.confirm("deny") }, "Deny…");
    const report = h("button", { type: "button", class: "danger", id: "report", disabled: closed, onclick: () => this.confirm("report") }, "I did not ask for this…");
    return h("div", { class: "actions decision-bar" }, approve, deny, report);
  }

  private raw(v: RequestView): HTMLElement {
    const toggle = h(
      "button",
      {
        type: "button",
        class: "link",
        id: "raw-toggle",
        "aria-expanded": this.rawOpen ? "true" : "false",
        onclick: () => {
          this.rawOpen = !this.rawOpen;
          this.render();
        },
      },
      this.rawOpen ? "Hide the raw transaction" : "Show the raw transaction",
    );
    return h(
      "section",
      { class: "raw" },
      toggle,
      this.rawOpen
        ? h(
            "div",
            { id: "raw" },
            h("p", { class: "muted" }, "The canonical transaction (RFC 8785 JSON). Your key signs a challenge derived from SHA-256(\"countersign/tx/v1\\n\" ‖ these bytes)."),
            h("pre", { class: "mono", id: "canonical" }, v.canonical),
            h("dl", { class: "fields" }, h("div", { class: "field" }, h("dt", {}, "Digest (base64url)"), h("dd", { class: "mono", id: "digest" }, v.digest)), h("div", { class: "field" }, h("dt", {}, "Digest (hex)"), h("dd", { class: "mono", id: "digest-hex" }, v.digest_hex))),
          )
        : null,
    );
  }

  /// Deny or report: a reason, confirmed, before the key is asked.
  private confirm(kind: "deny" | "report"): void {
    const v = this.view;
    if (!v) return;
    const reason = h("textarea", { id: "reason", rows: "3", maxlength: "500", "aria-required": kind === "report" ? "true" : undefined, "aria-describedby": "reason-help" });
    const error = h("p", { class: "field-error", role: "alert" });
    let close = () => {};
    const layer = h(
      "div",
      { class: "backdrop confirm" },
      h(
        "form",
        {
          class: "dialog",
          role: "dialog",
          "aria-modal": "true",
          "aria-labelledby": "confirm-title",
          onkeydown: (e: Event) => {
            if ((e as KeyboardEvent).key === "Escape") close();
          },
          onsubmit: (e: Event) => {
            e.preventDefault();
            const text = reason.value.trim();
            if (kind === "report" && !text) {
              error.textContent = "Say what you did not ask for: the security team reads it.";
              reason.focus();
              return;
            }
            close();
            void this.decide(kind === "deny" ? { kind: "deny", reason: text || null } : { kind: "report", reason: text });
          },
        },
        h("h2", { id: "confirm-title" }, kind === "deny" ? "Deny this request?" : "Report as suspicious?"),
        h("p", {}, v.model.headline),
        kind === "report"
          ? h("p", { class: "banner bad" }, `Reporting freezes ${v.requester_id}: they can ask for nothing more until an administrator lifts the freeze, and the security team is told.`)
          : h("p", { class: "muted" }, "Your key signs the denial, so it counts as your decision."),
        h("label", { for: "reason" }, kind === "deny" ? "Reason (optional)" : "What happened (required)"),
        reason,
        h("p", { id: "reason-help", class: "muted small" }, "Up to 500 characters, sent to the server with your signed decision."),
        error,
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { type: "button", id: "confirm-cancel", onclick: () => close() }, "Back"),
          h("button", { type: "submit", class: kind === "report" ? "danger" : "primary", id: "confirm-submit" }, kind === "deny" ? "Deny with my key" : "Report with my key"),
        ),
      ),
    );
    close = openModal(layer);
    reason.focus();
  }

  /// Runs the ceremony for `choice` on the digest that is on screen.
  private async decide(choice: Choice): Promise<void> {
    const v = this.view;
    if (!v) return;
    const verb = { approve: "Approve", deny: "Deny", report: "Report" }[choice.kind];
    this.ctx.ceremony.begin(`${verb}: ${v.model.headline}`, v.soft_key);
    try {
      const outcome = await ipc.decide(v.model.id, v.digest, choice);
      this.ctx.ceremony.finish(outcomeText(outcome, v, () => this.ctx.navigate({ name: "inbox" })));
    } catch (e) {
      const err = asShellError(e);
      const back = { label: "Back to the request", run: () => void this.load() };
      this.ctx.ceremony.fail(err, back);
    }
  }
}

/// What the server's answer means, in words.
export function outcomeText(o: DecisionOutcome, v: RequestView, goInbox: () => void) {
  const toInbox = { label: "Back to the inbox", run: goInbox };
  const lines = [`Transaction fingerprint ${o.fingerprint}.`];
  if (o.decision === "approve") {
    const title = o.state === "approved" ? "Approved: the decision is issued" : "Your approval is recorded";
    if (o.state === "pending") lines.unshift("Other approvals are still needed before the action can run.");
    return { title, lines, tone: "ok" as const, action: toInbox };
  }
  if (o.decision === "report") {
    lines.unshift(`Reported as suspicious. ${v.requester_id} is frozen and the security team is told.`);
    return { title: "Reported", lines, tone: "ok" as const, action: toInbox };
  }
  lines.unshift("The request is denied; the action will not run.");
  return { title: "Denied", lines, tone: "ok" as const, action: toInbox };
}

/// `text` with every character the warnings name as invisible or control drawn as a visible
/// `U+XXXX` mark, so that what the approver reads shows what is signed. (The characters come
/// from the approver crate's check, the one list.)
export function visible(m: DisplayModel, text: string): (Node | string)[] {
  const hidden = new Set(
    m.warnings
      .filter((w) => w.kind === "invisible" || w.kind === "control")
      .flatMap((w) => w.code_points.map((cp) => String.fromCodePoint(parseInt(cp.slice(2), 16)))),
  );
  if (hidden.size === 0) return [text];
  const out: (Node | string)[] = [];
  let run = "";
  for (const c of text) {
    if (!hidden.has(c)) {
      run += c;
      continue;
    }
    if (run) out.push(run);
    run = "";
    const cp = `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
    out.push(h("mark", { class: "hidden-char", title: "an invisible character" }, cp));
  }
  if (run) out.push(run);
  return out;
}
