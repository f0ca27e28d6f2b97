// Enrollment: the code (pasted or passed on the command line), the key, then the server's
// identity and key id confirmed before the key is touched and anything is saved. Without a
// keyring, a screen that says what to install, before the code is spent.
import { h, clear, put } from "../dom";
import { asShellError, ipc } from "../ipc";
import { errorText } from "../format";
import type { CeremonyOverlay } from "./ceremony";
import type { KeyChoice, Prefill, ServerIdentity, ShellError } from "../types";

export class EnrollScreen {
  private server = "";
  private code = "";
  private key: "usb" | "demo_software" = "usb";
  private pin = "";
  private identity: ServerIdentity | null = null;
  private error: ShellError | null = null;
  private busy = false;

  constructor(
    private root: HTMLElement,
    private ceremony: CeremonyOverlay,
    prefill: Prefill,
    private enrolled: () => void,
  ) {
    this.server = prefill.server ?? "";
    this.code = prefill.code ?? "";
  }

  render(): void {
    clear(this.root);
    if (this.error?.kind === "no_keyring") return this.renderNoKeyring(this.error);
    if (this.identity) return this.renderConfirm(this.identity);
    this.renderForm();
  }

  private renderForm(): void {
    const server = h("input", { id: "server", type: "url", value: this.server, placeholder: "https://approvals.example.com", required: true, autocomplete: "off", spellcheck: "false" });
    const code = h("textarea", { id: "code", rows: "3", required: true, placeholder: "CSE1.…", spellcheck: "false", autocomplete: "off" });
    code.value = this.code;
    const pin = h("input", { id: "demo-pin", type: "password", autocomplete: "new-password", minlength: "4", maxlength: "63", value: this.pin });
    const radio = (value: "usb" | "demo_software", title: string, note: string) =>
      h(
        "label",
        { class: `choice${value === "demo_software" ? " demo" : ""}` },
        h("input", { type: "radio", name: "key", value, id: `key-${value}`, checked: this.key === value, onchange: () => { this.key = value; this.sync(server, code, pin); this.render(); } }),
        h("span", { class: "choice-title" }, title),
        h("span", { class: "choice-note" }, note),
      );
    put(this.root, 
      h(
        "form",
        {
          class: "card enroll",
          onsubmit: (e: Event) => {
            e.preventDefault();
            this.sync(server, code, pin);
            void this.check();
          },
        },
        h("h1", {}, "Enroll this device"),
        h("p", { class: "muted" }, "Your administrator gives you a one-time enrollment code. It names the server's key, so this app can check it is talking to the right server before anything is sent."),
        h("label", { for: "server" }, "Server address"),
        server,
        h("label", { for: "code" }, "Enrollment code"),
        code,
        h(
          "fieldset",
          {},
          h("legend", {}, "Security key"),
          radio("usb", "USB security key", "A FIDO2 key (YubiKey, SoloKey, Nitrokey, …). You touch it for every decision."),
          radio("demo_software", "Demo software key", "For demonstrations only: a key kept in a file on this computer. Servers can refuse it."),
        ),
        this.key === "demo_software" ? h("div", {}, h("label", { for: "demo-pin" }, "PIN for the demo key (optional, 4–63 characters)"), pin) : null,
        this.error ? this.errorBanner(this.error) : null,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "check-server", disabled: this.busy }, this.busy ? "Checking…" : "Check the server")),
      ),
    );
    (this.code ? server : code).focus();
    if (!this.server) server.focus();
  }

  private sync(server: HTMLInputElement, code: HTMLTextAreaElement, pin: HTMLInputElement): void {
    this.server = server.value.trim();
    this.code = code.value.trim();
    this.pin = pin.value;
  }

  private errorBanner(e: ShellError): HTMLElement {
    const t = errorText(e);
    return h("div", { class: "banner bad", role: "alert", "data-error-kind": e.kind }, h("strong", {}, t.title), " ", t.detail);
  }

  private async check(): Promise<void> {
    this.busy = true;
    this.error = null;
    this.render();
    try {
      this.identity = await ipc.identify(this.server, this.code);
    } catch (e) {
      this.error = asShellError(e);
    }
    this.busy = false;
    this.render();
  }

  private renderConfirm(id: ServerIdentity): void {
    const row = (label: string, value: string, elId: string) => h("div", { class: "field" }, h("dt", {}, label), h("dd", { id: elId }, h("code", {}, value)));
    const go = h("button", { type: "button", class: "primary", id: "enroll-confirm", onclick: () => void this.enroll() }, this.key === "usb" ? "Enroll with my security key" : "Enroll with the demo software key");
    put(this.root, 
      h(
        "section",
        { class: "card enroll" },
        h("h1", {}, "Is this your server?"),
        h("p", {}, "The server's key matches the one your enrollment code names. Continue only if the address is the one your administrator gave you."),
        h(
          "dl",
          { class: "fields" },
          row("Address", id.server, "id-server"),
          row("Software", `${id.name} ${id.version}`, "id-software"),
          row("Signs for (RP id)", id.rp_id, "id-rp"),
          row("Origin", id.origin, "id-origin"),
          row("Server key id", groups(id.key_id), "id-key"),
        ),
        this.key === "demo_software" ? h("div", { class: "banner demo" }, "You chose the demo software key: it is not a hardware security key.") : null,
        this.error ? this.errorBanner(this.error) : null,
        h(
          "div",
          { class: "actions" },
          go,
          h("button", { type: "button", id: "enroll-back", onclick: () => { this.identity = null; this.error = null; this.render(); } }, "Back"),
        ),
      ),
    );
    go.focus();
  }

  private async enroll(): Promise<void> {
    const choice: KeyChoice = this.key === "usb" ? { kind: "usb" } : { kind: "demo_software", pin: this.pin || null };
    this.pin = "";
    this.ceremony.begin("Enroll this device", this.key === "demo_software");
    try {
      const view = await ipc.enroll(this.server, this.code, choice);
      this.ceremony.finish({
        title: "Enrolled",
        lines: [`This device now approves as ${view.approver_id} on ${view.server}.`],
        tone: "ok",
        action: { label: "Open the inbox", run: this.enrolled },
      });
    } catch (e) {
      this.error = asShellError(e);
      this.ceremony.fail(this.error, { label: "Back", run: () => this.render() });
    }
  }

  private renderNoKeyring(e: ShellError): void {
    put(this.root, 
      h(
        "section",
        { class: "card enroll", "data-testid": "no-keyring" },
        h("h1", {}, "No keyring to keep your device key"),
        h("p", {}, "This app keeps its device key in your system keyring, never in a plain file. None is available, so nothing was sent and your enrollment code is still valid."),
        h("p", { class: "muted" }, e.message),
        h("h2", {}, "What to install"),
        h(
          "ul",
          {},
          h("li", {}, "GNOME and most desktops: ", h("code", {}, "sudo apt install gnome-keyring"), ", then log out and in again."),
          h("li", {}, "KDE: KWallet with its Secret Service integration enabled."),
          h("li", {}, "Make sure the keyring is unlocked (it unlocks when you log in)."),
        ),
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "retry-keyring", onclick: () => { this.error = null; this.render(); } }, "Try again")),
      ),
    );
  }
}

/// "abcdefgh…" → "abcd efgh …" so a person can compare it group by group.
export function groups(s: string): string {
  return s.match(/.{1,4}/g)?.join(" ") ?? s;
}
