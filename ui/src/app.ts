// The window: header (who, where, connection), navigation, the current screen, and the key
// ceremony layer. The pending list lives in the Rust shell; this only renders its snapshots.
import { h, clear, put } from "./dom";
import { clock, connectionLabel, errorText, timeLeft } from "./format";
import iconUrl from "../../icons/icon.svg";
import { asShellError, ipc } from "./ipc";
import type { Context, Route } from "./context";
import type { NotificationStatus, Prefill, Snapshot } from "./types";
import { CeremonyOverlay } from "./screens/ceremony";
import { openModal } from "./dialog";
import { EnrollScreen } from "./screens/enroll";
import { renderInbox } from "./screens/inbox";
import { RequestScreen } from "./screens/request";
import { renderHistory } from "./screens/history";
import { renderSettings } from "./screens/settings";

/// The header's note when notifications are not reaching the person.
function notificationPill(n: NotificationStatus): HTMLElement | null {
  if (n.state === "paused") return h("span", { class: "pill warn", id: "notifications" }, `Notifications paused until ${clock(n.until).slice(0, 5)}`);
  if (n.state === "unavailable") return h("span", { class: "pill bad", id: "notifications", title: n.message }, "Notifications unavailable");
  return null;
}

export class App implements Context {
  private snap: Snapshot | null = null;
  private offset = 0;
  private route: Route = { name: "inbox" };
  private header: HTMLElement;
  private nav: HTMLElement;
  private main: HTMLElement;
  private notices: HTMLElement;
  private requestScreen: RequestScreen | null = null;
  private enrollScreen: EnrollScreen | null = null;
  private prefillValues: Prefill = { server: null, code: null };
  private notifications: NotificationStatus = { state: "on" };
  readonly ceremony: CeremonyOverlay;

  constructor(root: HTMLElement) {
    this.header = h("header", { class: "top" });
    this.nav = h("nav", { class: "side", "aria-label": "Main" });
    this.main = h("main", { id: "main", tabindex: "-1" });
    this.notices = h("div", { class: "notices" });
    const layer = h("div", { id: "layer", hidden: true });
    this.ceremony = new CeremonyOverlay(layer);
    clear(root);
    root.append(this.header, this.notices, h("div", { class: "body" }, this.nav, this.main), layer);
  }

  async start(): Promise<void> {
    await ipc.onSnapshot((s) => this.apply(s));
    await ipc.onCeremony((u) => this.ceremony.update(u));
    await ipc.onNotifications((n) => {
      this.notifications = n;
      this.renderHeader();
    });
    // The tray, a notification's "Review", a link or a second launch asked for something.
    await ipc.onPending(() => void this.takePending());
    this.notifications = (await ipc.notificationStatus().catch(() => null)) ?? this.notifications;
    this.prefillValues = await ipc.prefill().catch(() => this.prefillValues);
    try {
      this.apply(await ipc.snapshot());
    } catch (e) {
      this.fatal(asShellError(e).message);
    }
    await this.takePending();
    // Two frames later the first screen is on glass: tell the shell (it logs start-up time).
    requestAnimationFrame(() => requestAnimationFrame(() => void ipc.painted().catch(() => {})));
    setInterval(() => this.tick(), 1000);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.ceremony.isOpen) void ipc.cancelCeremony();
    });
  }

  /// Opens the request that was asked for (approving still needs the key), reloads the
  /// enrollment values a link changed, shows a notice.
  private async takePending(): Promise<void> {
    const p = await ipc.takePending().catch(() => null);
    if (!p) return;
    if (p.notice) this.showNotice(p.notice);
    if (p.prefill_changed) {
      this.prefillValues = await ipc.prefill().catch(() => this.prefillValues);
      if (!this.snap?.enrolled) {
        this.enrollScreen = null;
        this.renderMain();
      }
    }
    if (p.request && !this.ceremony.isOpen) this.navigate({ name: "request", id: p.request });
  }

  /// A dismissible note above the current screen.
  private showNotice(text: string): void {
    document.getElementById("notice")?.remove();
    const notice = h(
      "div",
      { class: "banner warn notice", id: "notice", role: "alert" },
      h("span", {}, text),
      h("button", { type: "button", class: "link", onclick: () => notice.remove() }, "Dismiss"),
    );
    this.notices.append(notice);
  }

  snapshot(): Snapshot | null {
    return this.snap;
  }

  now(): number {
    return Date.now() / 1000 + this.offset;
  }

  navigate(route: Route): void {
    this.route = route;
    this.requestScreen = null;
    this.renderMain();
    this.renderNav();
    this.main.focus();
  }

  private apply(s: Snapshot): void {
    const wasEnrolled = this.snap?.enrolled != null;
    this.snap = s;
    this.offset = s.now - Date.now() / 1000;
    this.renderHeader();
    this.renderNav();
    if (!s.enrolled || !wasEnrolled) {
      if (s.enrolled) this.enrollScreen = null;
      this.renderMain();
    } else if (this.route.name === "inbox") {
      this.renderMain();
    } else if (this.route.name === "request") {
      void this.requestScreen?.refresh();
    }
  }

  private tick(): void {
    this.renderHeader();
    const now = this.now();
    for (const el of this.main.querySelectorAll<HTMLElement>("[data-deadline]")) {
      const left = Number(el.dataset.deadline) - now;
      if (left <= 0 && this.route.name === "inbox") {
        this.renderMain();
        return;
      }
      el.textContent = left > 0 ? `${timeLeft(left)} left` : "expired";
    }
    this.requestScreen?.tick();
  }

  private renderHeader(): void {
    clear(this.header);
    const s = this.snap;
    const label = s ? connectionLabel(s.connection, this.now()) : { tone: "idle" as const, text: "Starting…" };
    put(this.header, 
      h("div", { class: "brand" }, h("img", { src: iconUrl, alt: "", width: "28", height: "28" }), h("span", {}, "Countersign")),
      s?.enrolled
        ? h(
            "div",
            { class: "who" },
            // The demo badge first, so a long address never hides it.
            s.enrolled.soft_key ? h("span", { class: "pill demo", id: "demo-badge", title: "This device signs with the demo software key, not a hardware key" }, "DEMO KEY") : null,
            h("span", { id: "approver" }, s.enrolled.approver_id),
            h("span", { class: "muted" }, ` on ${s.enrolled.server}`),
          )
        : h("div", { class: "who" }),
      notificationPill(this.notifications),
      h("div", { class: `conn ${label.tone}`, id: "connection", role: "status", "data-state": s?.connection.state ?? "starting" }, h("span", { class: "dot", "aria-hidden": "true" }), label.text),
    );
  }

  /// The navigation is built once and updated in place, so a pushed snapshot never takes
  /// the keyboard focus away from it.
  private renderNav(): void {
    const s = this.snap;
    if (!s?.enrolled) {
      clear(this.nav);
      return;
    }
    if (!this.nav.firstChild) {
      const link = (route: Route, text: string, id: string) =>
        h("button", { type: "button", id, class: "nav", "data-route": route.name, onclick: () => this.navigate(route) }, text);
      put(
        this.nav,
        link({ name: "inbox" }, "Inbox", "nav-inbox"),
        link({ name: "history" }, "History", "nav-history"),
        link({ name: "settings" }, "Settings", "nav-settings"),
      );
    }
    const current = this.route.name === "request" ? "inbox" : this.route.name;
    for (const button of this.nav.querySelectorAll<HTMLButtonElement>("button.nav")) {
      const on = button.dataset.route === current;
      button.classList.toggle("current", on);
      if (on) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    const count = s.inbox.filter((i) => i.approve_by > this.now()).length;
    const inbox = this.nav.querySelector<HTMLButtonElement>("#nav-inbox");
    let badge = this.nav.querySelector<HTMLElement>("#inbox-count");
    if (count > 0 && inbox) {
      if (!badge) {
        badge = h("span", { class: "count", id: "inbox-count" });
        inbox.append(badge);
      }
      badge.textContent = String(count);
      inbox.setAttribute("aria-label", `Inbox, ${count} waiting`);
    } else {
      badge?.remove();
      inbox?.setAttribute("aria-label", "Inbox");
    }
  }

  private renderMain(): void {
    const s = this.snap;
    if (!s) return;
    if (!s.enrolled) {
      if (s.profile_problem) {
        clear(this.main);
        const t = errorText(s.profile_problem);
        put(this.main, h("section", { class: "card", "data-testid": "profile-problem" }, h("h1", {}, "Cannot open your enrollment"), h("div", { class: "banner bad", role: "alert" }, h("strong", {}, t.title), " ", t.detail)));
        return;
      }
      if (!this.enrollScreen) {
        this.enrollScreen = new EnrollScreen(this.main, this.ceremony, this.prefillValues, () => this.navigate({ name: "inbox" }));
        this.enrollScreen.render();
      }
      return;
    }
    switch (this.route.name) {
      case "inbox": {
        // Keep the keyboard focus on the same request when the list is redrawn.
        const focused = (document.activeElement as HTMLElement | null)?.dataset?.id;
        clear(this.main);
        renderInbox(this, this.main, s);
        if (focused) this.main.querySelector<HTMLElement>(`.inbox-item[data-id="${CSS.escape(focused)}"]`)?.focus();
        return;
      }
      case "request":
        if (!this.requestScreen || this.requestScreen.id !== this.route.id) {
          clear(this.main);
          this.requestScreen = new RequestScreen(this, this.main, this.route.id);
          void this.requestScreen.load();
        }
        return;
      case "history":
        clear(this.main);
        ipc.history().then(
          (entries) => {
            if (this.route.name === "history") {
              clear(this.main);
              renderHistory(this.main, entries);
            }
          },
          (e) => this.showError(asShellError(e).message),
        );
        return;
      case "settings":
        clear(this.main);
        ipc.settings().then(
          (view) => {
            if (this.route.name === "settings") {
              clear(this.main);
              renderSettings(
                this.main,
                view,
                {
                  unenroll: () => this.confirmUnenroll(),
                  pause: (until) =>
                    ipc.pauseNotifications(until).then(
                      (n) => {
                        this.notifications = n;
                        this.renderHeader();
                        this.renderMain();
                      },
                      (e) => this.showError(asShellError(e).message),
                    ),
                  quit: () => void ipc.quit(),
                  setStartAtLogin: (on) =>
                    ipc.setStartAtLogin(on).then(
                      () => this.renderMain(),
                      (e) => {
                        this.showError(asShellError(e).message);
                        this.renderMain();
                      },
                    ),
                },
                this.notifications,
              );
            }
          },
          (e) => this.showError(asShellError(e).message),
        );
        return;
    }
  }

  private confirmUnenroll(): void {
    let close = () => {};
    const layer = h(
      "div",
      { class: "backdrop confirm" },
      h(
        "div",
        { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "unenroll-title" },
        h("h2", { id: "unenroll-title" }, "Unenroll this device?"),
        h("p", {}, "The device key, the profile and the local history are removed. You need a new enrollment code to approve from this computer again."),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { type: "button", id: "unenroll-cancel", onclick: () => close() }, "Keep enrolled"),
          h("button", { type: "button", class: "danger", id: "unenroll-confirm", onclick: () => { close(); ipc.unenroll().then(() => this.navigate({ name: "inbox" }), (e) => this.showError(asShellError(e).message)); } }, "Unenroll"),
        ),
      ),
    );
    close = openModal(layer);
    layer.querySelector<HTMLButtonElement>("#unenroll-cancel")?.focus();
  }

  private showError(message: string): void {
    this.main.prepend(h("div", { class: "banner bad", role: "alert" }, message));
  }

  private fatal(message: string): void {
    clear(this.main);
    put(this.main, h("div", { class: "banner bad", role: "alert" }, message));
  }
}
