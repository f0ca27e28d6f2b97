import { afterEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { App } from "./app";
import { NOW, snapshot } from "./fixtures.test-util";
import type { Snapshot } from "./types";

const item = (id: string, left: number) => ({
  id,
  title: "Send a payout",
  headline: `Pay ${id}`,
  amount: "25,000.00 EUR",
  object: "vendor:4711",
  requester: "alice@example.com (person)",
  approve_by: NOW + left,
  fingerprint: "AAAA-BBBB-CCCC",
});

type Handler = (cmd: string, args: unknown) => unknown;

async function start(first: Snapshot, more: Handler = () => null) {
  document.body.innerHTML = '<div id="app"></div>';
  vi.spyOn(Date, "now").mockReturnValue(NOW * 1000);
  mockIPC(
    (cmd, args) => {
      if (cmd === "snapshot") return first;
      if (cmd === "prefill") return { server: "https://approvals.example.com", code: null };
      return more(cmd, args);
    },
    { shouldMockEvents: true },
  );
  const app = new App(document.getElementById("app")!);
  await app.start();
  return app;
}
const text = (sel: string) => document.querySelector(sel)?.textContent ?? "";

describe("the window", () => {
  afterEach(() => {
    clearMocks();
    vi.restoreAllMocks();
  });

  it("says all is clear, then shows new requests as the shell pushes them, soonest first", async () => {
    await start(snapshot());
    expect(document.querySelector("[data-testid=empty]")).not.toBeNull();
    expect(text("#connection")).toBe("Connected");
    await emit("snapshot", snapshot({ inbox: [item("req_a", 60), item("req_b", 900)] }));
    await vi.waitFor(() => expect(document.querySelectorAll(".inbox-item").length).toBe(2));
    const ids = [...document.querySelectorAll<HTMLElement>(".inbox-item")].map((e) => e.dataset.id);
    expect(ids).toEqual(["req_a", "req_b"]);
    expect(text(".inbox-item[data-id=req_a] .item-deadline")).toBe("1 min 00 s left");
    expect(text("#inbox-count")).toBe("2");
  });

  it("keeps the connection in view: reconnecting, offline since, refused", async () => {
    await start(snapshot({ connection: { state: "reconnecting", retry_at: NOW + 4, offline_since: NOW - 30 } }));
    expect(text("#connection")).toMatch(/^Offline since \d\d:\d\d:\d\d — reconnecting in 4 s$/);
    await emit("snapshot", snapshot({ connection: { state: "refused", message: "device disabled" } }));
    await vi.waitFor(() => expect(text("#connection")).toBe("Refused by the server: device disabled"));
  });

  it("warns about pushes that failed verification, and shows the demo key badge", async () => {
    await start(
      snapshot({
        enrolled: { approver_id: "dana@example.com", server: "https://a.example", soft_key: true },
        refused: [{ at: NOW, request: "req_z", reason: "refused: unknown server key; this request is not shown" }],
      }),
    );
    expect(text("[data-testid=refused]")).toContain("failed verification and is not shown");
    expect(text("[data-testid=empty] h2")).toBe("Nothing verified is waiting");
    expect(text("#demo-badge")).toBe("DEMO KEY");
  });

  it("the inbox warns of an audit log going back apart from refused requests", async () => {
    await start(
      snapshot({
        audit_alarm: { since: NOW - 5, message: "the server's audit log went back from entry 12 to entry 9: its history may have been cut" },
        refused: [
          { at: NOW - 3, request: "req_x", reason: "refused: server signature does not verify; this request is not shown" },
          { at: NOW, request: "req_y", reason: "refused: signed by an unknown server key; this request is not shown" },
        ],
      }),
    );
    expect(text("[data-testid=audit-alarm]")).toContain("The server's audit history does not add up.");
    expect(text("[data-testid=audit-alarm]")).toContain("The server's audit log went back from entry 12 to entry 9");
    expect(text("[data-testid=audit-alarm]")).not.toContain("failed verification");
    expect(text("[data-testid=refused]")).toContain("2 pushed requests failed verification and are not shown.");
    expect(text("[data-testid=refused]")).toContain("Latest: refused: signed by an unknown server key");
    await emit("snapshot", snapshot({ audit_alarm: null, refused: [] }));
    await vi.waitFor(() => expect(document.querySelector("[data-testid=audit-alarm]")).toBeNull());
  });

  it("without an enrollment, opens the enrollment screen with what the command line gave", async () => {
    await start(snapshot({ enrolled: null, connection: { state: "not_enrolled" } }));
    expect((document.querySelector("#server") as HTMLInputElement).value).toBe("https://approvals.example.com");
    expect(document.querySelector("#key-usb")).not.toBeNull();
    expect(text("label.choice.demo")).toContain("Demo software key");
  });

  it("opens what the shell asks for: a request from the tray or a link, and a refused link's notice", async () => {
    const calls: [string, unknown][] = [];
    let pending = { request: null as string | null, prefill_changed: false, notice: null as string | null };
    await start(snapshot({ inbox: [item("req_a", 600)] }), (cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "take_pending") {
        const p = pending;
        pending = { request: null, prefill_changed: false, notice: null };
        return p;
      }
      return null;
    });
    expect(document.querySelector("[data-testid=empty]")).toBeNull();
    pending = { request: "req_a", prefill_changed: false, notice: "A link was refused: the link's request id is malformed." };
    await emit("pending", null);
    await vi.waitFor(() => expect(text("#notice")).toContain("A link was refused: the link's request id is malformed."));
    await vi.waitFor(() => expect(calls.some(([c, a]) => c === "request" && (a as { id: string }).id === "req_a")).toBe(true));
    (document.querySelector("#notice button") as HTMLButtonElement).click();
    expect(document.querySelector("#notice")).toBeNull();
  });

  it("turns start at login on from the settings (off by default)", async () => {
    const calls: [string, unknown][] = [];
    const view = {
      server: "https://a.example", rp_id: "a.example", origin: "https://a.example", server_key_ids: ["k1"],
      approver_id: "bob", device_id: "dev_1", device_key: "keyring",
      key: { kind: "usb", file: null, algorithm: "ES256", aaguid: null, pin_set: null },
      profile_path: "/p", start_at_login: false,
    };
    await start(snapshot(), (cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "settings") return view;
      if (cmd === "set_start_at_login") return true;
      if (cmd === "take_pending") return { request: null, prefill_changed: false, notice: null };
      return null;
    });
    (document.querySelector("#nav-settings") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector("#start-at-login")).not.toBeNull());
    const box = document.querySelector("#start-at-login") as HTMLInputElement;
    expect(box.checked).toBe(false);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    await vi.waitFor(() => expect(calls).toContainEqual(["set_start_at_login", { on: true }]));
  });
});
