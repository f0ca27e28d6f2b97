import { afterEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { EnrollScreen, groups } from "./enroll";
import { CeremonyOverlay } from "./ceremony";

const text = (sel: string) => document.querySelector(sel)?.textContent ?? "";

function screen(identify: () => unknown) {
  document.body.innerHTML = '<main id="main"></main><div id="layer" hidden></div>';
  mockIPC((cmd) => (cmd === "identify" ? identify() : null));
  const s = new EnrollScreen(document.getElementById("main")!, new CeremonyOverlay(document.getElementById("layer")!), { server: "https://approvals.example.com", code: "CSE1.abc.kid" }, () => {});
  s.render();
  return s;
}

describe("enrollment", () => {
  afterEach(() => clearMocks());

  it("shows the server's identity and key id before anything is saved", async () => {
    screen(() => ({ server: "https://approvals.example.com", name: "countersign", version: "0.1.0", rp_id: "approvals.example.com", origin: "https://approvals.example.com", key_id: "TMm62qb4ibX_dM7w" }));
    (document.querySelector("#check-server") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector("#id-key")).not.toBeNull());
    expect(text("#id-key")).toBe("TMm6 2qb4 ibX_ dM7w");
    expect(text("#id-rp")).toBe("approvals.example.com");
    expect(text("#enroll-confirm")).toBe("Enroll with my security key");
  });

  it("without a keyring, says what to install and that the code is unspent", async () => {
    screen(() => {
      throw { kind: "no_keyring", code: null, message: "no usable OS keyring (no Secret Service)" };
    });
    (document.querySelector("#check-server") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector("[data-testid=no-keyring]")).not.toBeNull());
    expect(text("[data-testid=no-keyring]")).toContain("your enrollment code is still valid");
    expect(text("[data-testid=no-keyring]")).toContain("gnome-keyring");
  });

  it("groups key ids for comparison", () => {
    expect(groups("abcdefghij")).toBe("abcd efgh ij");
  });
});
