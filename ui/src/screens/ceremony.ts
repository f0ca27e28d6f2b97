// The key ceremony overlay: follows the shell's typed key events ("touch your security key",
// "enter PIN — 7 tries left", ...), takes the PIN for the one call that needs it, and cancels
// at every step. It shows the result only once the server answered.
import { h, clear, put } from "../dom";
import { errorText } from "../format";
import { ipc } from "../ipc";
import { setInert } from "../dialog";
import type { CeremonyUpdate, ShellError } from "../types";

const stageTitle: Record<string, string> = {
  waiting_for_key: "Looking for your security key",
  touch: "Touch your security key",
  select_key: "Several keys found",
  pin: "Enter your security key's PIN",
  wrong_pin: "Wrong PIN: enter it again",
  pin_auth_blocked: "Too many wrong PINs",
  pin_blocked: "PIN blocked",
  pin_not_set: "This key has no PIN",
  uv_failed: "Not recognised",
  uv_blocked: "Built-in verification blocked",
  sending: "Sending",
};

/// What to say under a title the key's own message would only repeat.
const stageHint: Record<string, string> = {
  touch: "Touch the button or the metal contact on your key; many keys blink while they wait.",
  waiting_for_key: "Insert your security key, or tap it if it is already in.",
};

/// The line under the title: the key's message, unless it only repeats the title.
export function stageMessage(stage: string, message: string): string | null {
  const plain = (t: string) => t.toLowerCase().replace(/[^a-z0-9]/g, "");
  const title = stageTitle[stage] ?? "";
  if (!message || plain(message) === plain(title)) return stageHint[stage] ?? null;
  return sentence(message);
}

export interface Finish {
  title: string;
  lines: string[];
  tone: "ok" | "bad";
  action: { label: string; run: () => void };
}

export class CeremonyOverlay {
  private layer: HTMLElement;
  private box: HTMLElement | null = null;
  private open = false;

  constructor(layer: HTMLElement) {
    this.layer = layer;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /// Opens the overlay for an operation described by `what` (e.g. "Approve: Send a payout").
  begin(what: string, demoKey: boolean): void {
    this.open = true;
    clear(this.layer);
    this.box = h("div", { class: "dialog ceremony", role: "dialog", "aria-modal": "true", "aria-labelledby": "ceremony-title" });
    this.layer.append(h("div", { class: "backdrop" }, this.box));
    this.layer.hidden = false;
    setInert(true);
    this.render(
      { stage: "waiting_for_key", message: "looking for your security key: insert it if it is not plugged in", retries_left: null },
      what,
      demoKey,
    );
  }

  private what = "";
  private demoKey = false;

  /// Shows one key event.
  update(u: CeremonyUpdate): void {
    if (!this.open) return;
    this.render(u, this.what, this.demoKey);
  }

  private render(u: CeremonyUpdate, what: string, demoKey: boolean): void {
    this.what = what;
    this.demoKey = demoKey;
    const box = this.box;
    if (!box) return;
    clear(box);
    const asksPin = u.stage === "pin" || u.stage === "wrong_pin";
    const blocked = ["pin_auth_blocked", "pin_blocked", "pin_not_set"].includes(u.stage);
    put(box, 
      h("p", { class: "dialog-what" }, what),
      h(
        "h2",
        { id: "ceremony-title", class: blocked ? "stage bad" : "stage", "data-stage": u.stage },
        stageTitle[u.stage] ?? "Security key",
      ),
      u.retries_left === null ? h("p", { class: "stage-message", "data-testid": "ceremony-message" }, stageMessage(u.stage, u.message)) : null,
      u.retries_left !== null ? h("p", { class: "retries", "data-testid": "retries" }, `${u.retries_left} tries left before the PIN is blocked`) : null,
      demoKey ? h("p", { class: "demo-note" }, "Demo software key: its touch is simulated after a moment. A real security key waits for yours.") : null,
      u.stage === "touch" || u.stage === "waiting_for_key" ? h("div", { class: "key-pulse", "aria-hidden": "true" }) : null,
    );
    if (asksPin) {
      const input = h("input", {
        type: "password",
        id: "pin",
        autocomplete: "off",
        inputmode: "text",
        "aria-label": "Security key PIN",
        minlength: "4",
        maxlength: "63",
      });
      const form = h(
        "form",
        {
          class: "pin-form",
          onsubmit: (e: Event) => {
            e.preventDefault();
            const pin = input.value;
            input.value = "";
            if (pin.length > 0) void ipc.submitPin(pin);
          },
        },
        h("label", { for: "pin" }, "PIN"),
        input,
        h("button", { type: "submit", class: "primary", id: "pin-submit" }, "Unlock key"),
      );
      put(box, form);
      queueMicrotask(() => input.focus());
    }
    const cancel = h("button", { type: "button", id: "ceremony-cancel", onclick: () => void ipc.cancelCeremony() }, "Cancel");
    put(box, h("div", { class: "dialog-actions" }, cancel));
    if (!asksPin) queueMicrotask(() => cancel.focus());
  }

  /// Shows how it ended.
  finish(f: Finish): void {
    const box = this.box;
    if (!box) return;
    clear(box);
    const button = h(
      "button",
      {
        type: "button",
        class: "primary",
        id: "ceremony-done",
        onclick: () => {
          this.close();
          f.action.run();
        },
      },
      f.action.label,
    );
    put(box, 
      h("p", { class: "dialog-what" }, this.what),
      h("h2", { id: "ceremony-title", class: `stage ${f.tone}`, "data-testid": "ceremony-result" }, f.title),
      ...f.lines.map((l) => h("p", { class: "result-line" }, l)),
      h("div", { class: "dialog-actions" }, button),
    );
    queueMicrotask(() => button.focus());
  }

  /// Shows a failure in the shell's words.
  fail(e: ShellError, then: { label: string; run: () => void }): void {
    const t = errorText(e);
    this.finish({
      title: t.title,
      lines: [sentence(t.detail), ...(e.code ? [`Server code: ${e.code}`] : [])],
      tone: "bad",
      action: then,
    });
    this.box?.setAttribute("data-error-kind", e.kind);
  }

  close(): void {
    this.open = false;
    this.box = null;
    clear(this.layer);
    this.layer.hidden = true;
    setInert(false);
  }
}

/// "touch your security key" → "Touch your security key."
export function sentence(s: string): string {
  if (!s) return s;
  const t = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
