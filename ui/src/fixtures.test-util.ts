// Shared test data shaped as the Rust shell sends it.
import type { RequestView, Snapshot } from "./types";

export const NOW = 1_800_000_000;

export function requestView(over: Partial<RequestView> = {}): RequestView {
  return {
    model: {
      id: "req_1",
      title: "Change payout bank details",
      headline: "Change the bank account that vendor:4711 is paid to",
      action: "payout.bank_details.change",
      object: "vendor:4711",
      amount: "25,000.00 EUR",
      scope: "role:payments",
      changes: [{ field: "iban", before: "DE89370400440532013000", after: "DE44500105175407324931" }],
      requester: "alice@example.com (person)",
      audience: "payouts-service",
      session: "8409-7828-FC31",
      reason: "bank details change",
      progress: ["1 of 2 approvers from finance-approvers"],
      approvals: [{ approver_id: "bob@example.com", at: NOW - 185, text: "bob@example.com approved 3 min ago" }],
      user_verification: true,
      approve_by: "2027-01-15T08:00:00Z",
      seconds_left: 600,
      fingerprint: "525C-119C-3E71",
      state: "pending",
      warnings: [],
    },
    requester_id: "alice@example.com",
    requester_kind: "person",
    approved_by: ["bob@example.com"],
    digest: "UlwRnD5xAAAA",
    digest_hex: "525c119c3e71",
    canonical: '{"action":"payout.bank_details.change"}',
    approve_by: NOW + 600,
    soft_key: false,
    ...over,
  };
}

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    enrolled: { approver_id: "dana@example.com", server: "https://approvals.example.com", soft_key: false },
    profile_problem: null,
    connection: { state: "connected", since: NOW - 10 },
    inbox: [],
    refused: [],
    audit_alarm: null,
    now: NOW,
    ...over,
  };
}
