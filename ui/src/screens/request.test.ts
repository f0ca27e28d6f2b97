import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { RequestScreen } from "./request";
import { CeremonyOverlay } from "./ceremony";
import type { Context } from "../context";
import { NOW, requestView, snapshot } from "../fixtures.test-util";
import type { RequestView, Snapshot } from "../types";

function setup(view: RequestView, decide?: (args: Record<string, unknown>) => unknown, alarm: Snapshot["audit_alarm"] = null) {
  document.body.innerHTML = '<main id="main"></main><div id="layer" hidden></div>';
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, args) => {
    calls.push({ cmd, args: args as Record<string, unknown> });
    if (cmd === "request") return view;
    if (cmd === "decide") return decide ? decide(args as Record<string, unknown>) : { id: "req_1", decision: "approve", state: "pending", fingerprint: view.model.fingerprint };
    return null;
  });
  let now = NOW;
  const ctx: Context = {
    snapshot: () => snapshot({ audit_alarm: alarm, inbox: [{ id: "req_1", title: "", headline: "", amount: null, object: "", requester: "", approve_by: view.approve_by, fingerprint: "" }] }),
    now: () => now,
    navigate: vi.fn(),
    ceremony: new CeremonyOverlay(document.getElementById("layer")!),
  };
  const screen = new RequestScreen(ctx, document.getElementById("main")!, "req_1");
  return { screen, ctx, calls, advance: (s: number) => (now += s) };
}

const text = (sel: string) => document.querySelector(sel)?.textContent ?? "";
const lines = (sel: string) => Array.from(document.querySelectorAll(sel), (e) => e.textContent ?? "");

describe("the request screen", () => {
  beforeEach(() => vi.useRealTimers());
  afterEach(() => clearMocks());

  it("renders every signed field on its own line, the diff and the fingerprint", async () => {
    const { screen } = setup(requestView());
    await screen.load();
    expect(text("#headline")).toBe("Change the bank account that vendor:4711 is paid to");
    expect(text("#f-action")).toBe("payout.bank_details.change");
    expect(text("#f-object")).toBe("vendor:4711");
    expect(text("#f-amount")).toBe("25,000.00 EUR");
    expect(text("#f-scope")).toBe("role:payments");
    expect(text("#f-requester")).toBe("alice@example.com person");
    expect(text("#f-audience")).toBe("payouts-service");
    expect(text("#f-session")).toBe("8409-7828-FC31");
    expect(text("#f-reason")).toBe("bank details change");
    expect(lines("#f-progress .progress-line")).toEqual(["1 of 2 approvers from finance-approvers"]);
    expect(text("#f-progress .approvals")).toBe("bob@example.com approved 3 min ago");
    expect(text("#f-uv")).toContain("will ask for your PIN");
    expect(text("#fingerprint")).toBe("525C-119C-3E71");
    const row = document.querySelectorAll("#changes tbody tr")[0];
    expect(row.querySelector("del")?.textContent).toBe("DE89370400440532013000");
    expect(row.querySelector("ins")?.textContent).toBe("DE44500105175407324931");
    expect(text("#countdown")).toBe("10 min 00 s left to decide");
    expect(document.querySelector("#canonical")).toBeNull();
  });

  it("shows the server's audit alarm above the request, where the decision is made", async () => {
    const { screen } = setup(requestView(), undefined, { since: NOW, message: "the server's audit log entry 40 changed after it was signed" });
    await screen.load();
    expect(text("[data-testid=audit-alarm]")).toContain("The server's audit log entry 40 changed after it was signed.");
    expect(text("#f-object")).toBe("vendor:4711");
  });

  it("gives each group of a request that needs several groups its own line", async () => {
    const view = requestView();
    view.model.progress = ["alice@example.com's own confirmation: done", "1 of 1 approver from finance-approvers", "0 of 1 approver from security-admins"];
    const { screen } = setup(view);
    await screen.load();
    expect(lines("#f-progress .progress-line")).toEqual(view.model.progress);
  });

  it("keeps the approvals' times current while the screen is open", async () => {
    const { screen, advance } = setup(requestView());
    await screen.load();
    advance(125);
    screen.tick();
    expect(text("#f-progress .approvals")).toBe("bob@example.com approved 5 min ago");
  });

  it("warns above the fields when what is shown holds invisible or look-alike characters", async () => {
    const plain = setup(requestView());
    await plain.screen.load();
    expect(document.querySelector("#text-warnings")).toBeNull();
    const view = requestView();
    view.model.warnings = [
      { field: "object", kind: "invisible", code_points: ["U+200B"], message: "object contains invisible characters: what you read may not be what is signed (U+200B)" },
      { field: "change payee (after)", kind: "mixed_scripts", code_points: ["U+0410"], message: "change payee (after) mixes scripts (Cyrillic, Latin): letters that look alike can differ (U+0410)" },
    ];
    const { screen } = setup(view);
    await screen.load();
    const banner = document.querySelector("#text-warnings")!;
    expect(banner.getAttribute("role")).toBe("alert");
    const items = [...banner.querySelectorAll("li")].map((li) => [li.getAttribute("data-field"), li.textContent]);
    expect(items).toEqual([
      ["object", "object contains invisible characters: what you read may not be what is signed (U+200B)"],
      ["change payee (after)", "change payee (after) mixes scripts (Cyrillic, Latin): letters that look alike can differ (U+0410)"],
    ]);
    // The invisible character is drawn where it is, not hidden.
    expect(document.querySelector("#f-object mark.hidden-char")).toBeNull();
    // The banner comes before the fields it is about.
    expect(banner.compareDocumentPosition(document.querySelector("#f-object")!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });

  it("draws each character a warning names as invisible in place", async () => {
    const view = requestView();
    view.model.object = "vendor:47\u200B11";
    view.model.warnings = [{ field: "object", kind: "invisible", code_points: ["U+200B"], message: "object contains invisible characters (U+200B)" }];
    const { screen } = setup(view);
    await screen.load();
    expect(text("#f-object")).toBe("vendor:47U+200B11");
    expect(document.querySelector("#f-object mark.hidden-char")?.textContent).toBe("U+200B");
  });

  it("keeps requester text as text, never markup", async () => {
    const { screen } = setup(requestView({ requester_id: "<img src=x onerror=alert(1)>" }));
    await screen.load();
    expect(document.querySelector("#f-requester img")).toBeNull();
    expect(text("#f-requester")).toContain("<img src=x onerror=alert(1)>");
  });

  it("shows the raw canonical transaction and digest on one click", async () => {
    const { screen } = setup(requestView());
    await screen.load();
    (document.querySelector("#raw-toggle") as HTMLButtonElement).click();
    expect(text("#canonical")).toBe('{"action":"payout.bank_details.change"}');
    expect(text("#digest")).toBe("UlwRnD5xAAAA");
    expect(text("#digest-hex")).toBe("525c119c3e71");
  });

  it("counts down, then shows expired and disables every answer", async () => {
    const { screen, advance } = setup(requestView());
    await screen.load();
    advance(599);
    screen.tick();
    expect(text("#countdown")).toBe("1 s left to decide");
    advance(1);
    screen.tick();
    expect(text("#countdown")).toBe("Expired");
    expect(document.querySelector("[data-testid=expired]")).not.toBeNull();
    for (const id of ["#approve", "#deny", "#report"]) {
      expect((document.querySelector(id) as HTMLButtonElement).disabled).toBe(true);
    }
  });

  it("sends the digest it showed with the decision", async () => {
    const { screen, calls } = setup(requestView());
    await screen.load();
    (document.querySelector("#approve") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(text("[data-testid=ceremony-result]")).toBe("Your approval is recorded"));
    const decide = calls.find((c) => c.cmd === "decide")!;
    expect(decide.args).toEqual({ id: "req_1", digest: "UlwRnD5xAAAA", choice: { kind: "approve" } });
  });

  it("requires a reason to report and says what reporting does", async () => {
    const { screen, calls } = setup(requestView());
    await screen.load();
    (document.querySelector("#report") as HTMLButtonElement).click();
    expect(text(".confirm")).toContain("Reporting freezes alice@example.com");
    (document.querySelector("#confirm-submit") as HTMLButtonElement).click();
    expect(text(".confirm .field-error")).toContain("Say what you did not ask for");
    expect(calls.some((c) => c.cmd === "decide")).toBe(false);
    (document.querySelector("#reason") as HTMLTextAreaElement).value = "  not me  ";
    (document.querySelector("#confirm-submit") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(calls.some((c) => c.cmd === "decide")).toBe(true));
    expect(calls.find((c) => c.cmd === "decide")!.args.choice).toEqual({ kind: "report", reason: "not me" });
  });

  it("shows the shell's refusal by kind, with the server's code", async () => {
    const { screen } = setup(requestView(), () => {
      throw { kind: "server_refused", code: "already_decided", message: "the server refused (already_decided): your decision is recorded" };
    });
    await screen.load();
    (document.querySelector("#approve") as HTMLButtonElement).click();
    await vi.waitFor(() => expect(text("[data-testid=ceremony-result]")).toBe("The server refused"));
    expect(text(".ceremony")).toContain("Server code: already_decided");
    expect(document.querySelector(".ceremony")?.getAttribute("data-error-kind")).toBe("server_refused");
  });

  it("labels the demo software key", async () => {
    const { screen } = setup(requestView({ soft_key: true }));
    await screen.load();
    expect(text("#approve")).toBe("Approve with the demo key");
    expect(text(".banner.demo")).toContain("Demo software key");
  });
});

describe("the deny dialog", () => {
  afterEach(() => clearMocks());

  it("closes with Back and gives the window back its focus and clicks", async () => {
    document.body.innerHTML = '<div class="body"><main id="main"></main></div><div id="layer" hidden></div>';
    mockIPC((cmd) => (cmd === "request" ? requestView() : null));
    const ctx: Context = {
      snapshot: () => snapshot(),
      now: () => NOW,
      navigate: vi.fn(),
      ceremony: new CeremonyOverlay(document.getElementById("layer")!),
    };
    const screen = new RequestScreen(ctx, document.getElementById("main")!, "req_1");
    await screen.load();
    (document.querySelector("#deny") as HTMLButtonElement).click();
    expect((document.querySelector(".body") as HTMLElement).inert).toBe(true);
    (document.querySelector("#confirm-cancel") as HTMLButtonElement).click();
    expect(document.querySelector(".confirm")).toBeNull();
    expect((document.querySelector(".body") as HTMLElement).inert).toBe(false);
  });
});
