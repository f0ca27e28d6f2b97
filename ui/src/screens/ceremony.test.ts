import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { CeremonyOverlay, sentence } from "./ceremony";
import type { Stage } from "../types";

function overlay() {
  document.body.innerHTML = '<div id="layer" hidden></div>';
  const calls: { cmd: string; args: unknown }[] = [];
  mockIPC((cmd, args) => {
    calls.push({ cmd, args });
    return null;
  });
  const o = new CeremonyOverlay(document.getElementById("layer")!);
  o.begin("Approve: Pay 25,000.00 EUR to vendor:4711", false);
  return { o, calls };
}
const text = (sel: string) => document.querySelector(sel)?.textContent ?? "";

describe("the key ceremony", () => {
  afterEach(() => clearMocks());

  it("follows each key event with its own words", () => {
    const { o } = overlay();
    expect(text("h2")).toBe("Looking for your security key");
    const cases: [Stage, string, string][] = [
      ["touch", "touch your security key", "Touch your security key"],
      ["select_key", "several keys found: touch the one to use", "Several keys found"],
      ["pin_auth_blocked", "too many wrong PINs: unplug the key and plug it in again", "Too many wrong PINs"],
      ["pin_blocked", "PIN blocked: the key must be reset", "PIN blocked"],
      ["pin_not_set", "this key has no PIN: set one first", "This key has no PIN"],
      ["sending", "signed: sending your decision to the server", "Sending"],
    ];
    for (const [stage, message, title] of cases) {
      o.update({ stage, message, retries_left: null });
      expect(text("h2")).toBe(title);
      // The key's words under the title, unless they only repeat it: then a hint.
      const expected = stage === "touch" ? "Touch the button or the metal contact on your key; many keys blink while they wait." : sentence(message);
      expect(text("[data-testid=ceremony-message]")).toBe(expected);
      expect(text("[data-testid=ceremony-message]")).not.toBe(`${title}.`);
      expect(document.querySelector("#pin")).toBeNull();
      expect(document.querySelector("#ceremony-cancel")).not.toBeNull();
    }
    expect(document.querySelector("h2")?.className).toContain("stage");
  });

  it("asks for the PIN, sends it once and forgets it; shows the tries left", () => {
    const { o, calls } = overlay();
    o.update({ stage: "pin", message: "enter your security key's PIN", retries_left: null });
    const pin = document.querySelector("#pin") as HTMLInputElement;
    expect(pin.type).toBe("password");
    pin.value = "4821";
    (document.querySelector(".pin-form") as HTMLFormElement).requestSubmit();
    expect(calls).toEqual([{ cmd: "submit_pin", args: { pin: "4821" } }]);
    expect(pin.value).toBe("");
    o.update({ stage: "wrong_pin", message: "wrong PIN: enter it again, 7 tries left", retries_left: 7 });
    expect(text("h2")).toBe("Wrong PIN: enter it again");
    expect(text("[data-testid=retries]")).toBe("7 tries left before the PIN is blocked");
  });

  it("cancels at any step", () => {
    const { o, calls } = overlay();
    o.update({ stage: "touch", message: "touch your security key", retries_left: null });
    (document.querySelector("#ceremony-cancel") as HTMLButtonElement).click();
    expect(calls.map((c) => c.cmd)).toEqual(["cancel_ceremony"]);
  });

  it("ends with the shell's error kind and a way back", () => {
    const { o } = overlay();
    let back = false;
    o.fail({ kind: "timed_out", code: null, message: "the security key timed out: nothing was signed or sent" }, { label: "Back", run: () => (back = true) });
    expect(text("[data-testid=ceremony-result]")).toBe("The security key timed out");
    expect(text(".ceremony")).toContain("The security key timed out: nothing was signed or sent.");
    (document.querySelector("#ceremony-done") as HTMLButtonElement).click();
    expect(back).toBe(true);
    expect(document.getElementById("layer")!.hidden).toBe(true);
  });
});
