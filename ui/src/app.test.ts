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

async function start(first: Snapshot) {
  document.body.innerHTML = '<div id="app"></div>';
  vi.spyOn(Date, "now").mockReturnValue(NOW * 1000);
  mockIPC(
    (cmd) => {
      if (cmd === "snapshot") return first;
      if (cmd === "prefill") return { server: "https://approvals.example.com", code: null };
      return null;
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
        refused: [{ at: NOW, reason: "refused: unknown server key; this request is not shown" }],
      }),
    );
    expect(text("[data-testid=refused]")).toContain("failed verification and is not shown");
    expect(text("[data-testid=empty] h2")).toBe("Nothing verified is waiting");
    expect(text("#demo-badge")).toBe("DEMO KEY");
  });

  it("without an enrollment, opens the enrollment screen with what the command line gave", async () => {
    await start(snapshot({ enrolled: null, connection: { state: "not_enrolled" } }));
    expect((document.querySelector("#server") as HTMLInputElement).value).toBe("https://approvals.example.com");
    expect(document.querySelector("#key-usb")).not.toBeNull();
    expect(text("label.choice.demo")).toContain("Demo software key");
  });
});
