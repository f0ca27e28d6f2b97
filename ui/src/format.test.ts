import { describe, expect, it } from "vitest";
import { connectionLabel, errorText, timeLeft } from "./format";

describe("timeLeft", () => {
  it("counts down in seconds, minutes and hours, then says expired", () => {
    expect(timeLeft(45)).toBe("45 s");
    expect(timeLeft(65)).toBe("1 min 05 s");
    expect(timeLeft(3 * 3600 + 4 * 60 + 9)).toBe("3 h 04 min");
    expect(timeLeft(0)).toBe("expired");
    expect(timeLeft(-5)).toBe("expired");
  });
});

describe("connectionLabel", () => {
  it("says how long until the next attempt and since when the app is offline", () => {
    const offline = new Date(2026, 11, 1, 14, 3, 27).getTime() / 1000;
    const l = connectionLabel({ state: "reconnecting", retry_at: offline + 20, offline_since: offline }, offline + 12);
    expect(l.tone).toBe("warn");
    expect(l.text).toBe("Offline since 14:03:27 — reconnecting in 8 s");
    expect(connectionLabel({ state: "connected", since: 1 }, 2)).toEqual({ tone: "ok", text: "Connected" });
    expect(connectionLabel({ state: "refused", message: "device disabled" }, 2).tone).toBe("bad");
  });
});

describe("errorText", () => {
  it("titles every kind the shell sends and keeps the shell's detail", () => {
    expect(errorText({ kind: "pin_blocked", code: null, message: "m" })).toEqual({ title: "PIN blocked", detail: "m" });
    expect(errorText({ kind: "server_refused", code: "approval_expired", message: "x" }).title).toBe("The server refused");
    expect(errorText({ kind: "something_new", code: null, message: "y" }).title).toBe("Something went wrong");
  });
});
