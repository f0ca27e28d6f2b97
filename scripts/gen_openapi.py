#!/usr/bin/env python3
"""Writes the server's OpenAPI document to stdout. The committed copy is
crates/countersign-server/openapi.json; scripts/test.sh fails when the two differ, and a unit test
checks the document's paths and methods against the router.

    python3 scripts/gen_openapi.py > crates/countersign-server/openapi.json
"""
import json
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def problem_resp(desc): return {"description": desc, "content": {"application/problem+json": {"schema": ref("Problem")}}}
def json_resp(desc, schema): return {"description": desc, "content": {"application/json": {"schema": schema}}}
P = {"$ref": "#/components/parameters/RequestId"}
errs_app = {"400": problem_resp("Malformed body or query (`malformed_json`, `unknown_field`, `missing_field`, `duplicate_field`, `invalid_value`, `invalid_query`, `body_too_large`)"),
            "401": problem_resp("Missing, unknown or revoked API key (`unauthorized`)"),
            "404": problem_resp("No such request for this application's audience (`not_found`)"),
            "429": problem_resp("Rate limited (`rate_limited`); see `Retry-After`")}
too_large = {"413": problem_resp("`body_too_large`: over `limits.max_body_bytes`")}
json_only = {"415": problem_resp("`unsupported_media_type`: send `Content-Type: application/json`")}
errs_dev = {"400": problem_resp("Malformed body (`malformed_json`, `unknown_field`, `missing_field`, `invalid_value`, `invalid_base64`, `invalid_reason`, `reason_required`)"),
            "401": problem_resp("Missing or invalid `Countersign-Device` signature, stale timestamp, replayed nonce, disabled device or approver"),
            "403": problem_resp("Not allowed: `own_request`, `not_eligible`, `unknown_credential`, `credential_revoked`, `counter_regression`, or an assertion check (`challenge_mismatch`, `origin_mismatch`, `rp_id_mismatch`, `user_not_present`, `user_not_verified`, `bad_signature`, ...)"),
            "404": problem_resp("No such request (`not_found`)"),
            "409": problem_resp("`not_pending`, `approval_expired` or `already_decided`"),
            "429": problem_resp("Rate limited (`rate_limited`)")}
b64 = {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "description": "base64url without padding"}
assertion = {"type": "object", "additionalProperties": False,
   "required": ["credential_id", "authenticator_data", "client_data_json", "signature"],
   "properties": {"credential_id": b64, "authenticator_data": b64, "client_data_json": b64, "signature": b64,
                  "reason": {"type": "string", "maxLength": 1024, "description": "Why (denials and reports; required for a report)"}}}
device_sec = [{"device": []}]
app_sec = [{"apiKey": []}]
def decide(verdict, desc):
    return {"post": {"tags": ["approver"], "summary": desc, "security": device_sec, "parameters": [P],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Assertion")}}},
        "responses": {"200": json_resp("Counted", ref("DecisionProgress")), **errs_dev, **too_large}}}
doc = {
 "openapi": "3.1.0",
 "info": {"title": "Countersign server API", "version": "0.1.0",
   "description": "Step-up approvals for high-risk actions. Errors are RFC 9457 problem details with a stable `code`. Formats (canonical JSON, digests, challenges, tokens, device signatures) are specified byte by byte in docs/protocol.md."},
 "servers": [{"url": "http://localhost:8710"}],
 "tags": [{"name": "public"}, {"name": "application", "description": "Protected applications, with an API key"},
          {"name": "approver", "description": "Enrolled approver devices; every call signed with the device key"}],
 "paths": {
  "/health": {"get": {"tags": ["public"], "summary": "Liveness and database reachability", "responses": {"200": json_resp("Up", {"type": "object"}), "503": problem_resp("Database unavailable")}}},
  "/metrics": {"get": {"tags": ["public"], "summary": "Prometheus metrics (OpenMetrics text)", "responses": {"200": {"description": "Metrics", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}}}},
  "/openapi.json": {"get": {"tags": ["public"], "summary": "This document", "responses": {"200": json_resp("OpenAPI 3.1", {"type": "object"})}}},
  "/v1/info": {"get": {"tags": ["public"], "summary": "RP id, origin and the server key an approver pins at enrollment", "responses": {"200": json_resp("Server info", ref("ServerInfo"))}}},
  "/.well-known/jwks.json": {"get": {"tags": ["public"], "summary": "Keys that verify decision tokens, pushed requests, checkpoints and webhooks (RFC 7517, OKP Ed25519)", "responses": {"200": json_resp("JWKS", {"type": "object", "required": ["keys"]})}}},
  "/v1/keys/rollovers": {"get": {"tags": ["public"], "summary": "Each signing-key rotation's endorsement of the new key by the previous one (docs/protocol.md, key rollover), oldest first", "responses": {"200": json_resp("Endorsements", {"type": "array", "items": {"type": "object", "additionalProperties": False, "required": ["new_key", "endorsed_by", "at", "signature"], "properties": {"new_key": b64, "endorsed_by": {"type": "string"}, "at": {"type": "integer"}, "signature": b64}}})}}},
  "/v1/requests": {"post": {"tags": ["application"], "summary": "Ask for a step-up before a high-risk action", "security": app_sec,
     "requestBody": {"required": True, "content": {"application/json": {"schema": ref("CreateRequest")}}},
     "responses": {"201": json_resp("Step-up needed; the request is pending", ref("RequestView")),
                   "200": json_resp("Either the same request created earlier under this idempotency key, or `{\"outcome\":\"not_required\"}` when policy needs no step-up", {"oneOf": [ref("RequestView"), {"type": "object", "required": ["outcome"], "properties": {"outcome": {"const": "not_required"}}}]}),
                   "403": problem_resp("`policy_forbids`, `requester_frozen`, or `requester_not_allowed` (outside this API key's requester patterns)"), **too_large, **json_only,
                   "409": problem_resp("`idempotency_conflict`: the key was used for a different body"),
                   "422": problem_resp("Invalid transaction (`unknown_action`, `missing_member`, `unbound_session`, `requester_not_canonical`, amount/field codes, `policy_input`)"),
                   "429": problem_resp("`too_many_pending` (the requester's cap), `api_key_pending_cap`, `requester_rate_limited`, `api_key_rate_limited` or `rate_limited`; see `Retry-After`"),
                   "400": problem_resp("Malformed body (`malformed_json`, `unknown_field`, `missing_field`, `duplicate_field`, `invalid_value`, `invalid_context`, `invalid_idempotency_key`, `body_too_large`)"), "401": errs_app["401"]}}},
  "/v1/requests/{id}": {"get": {"tags": ["application"], "summary": "Read a request; `?wait=N` long-polls up to N (≤ 60) seconds for a change", "security": app_sec,
     "parameters": [P, {"name": "wait", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "maximum": 60}}],
     "responses": {"200": json_resp("The request", ref("RequestView")), **errs_app}}},
  "/v1/requests/{id}/decision": {"get": {"tags": ["application"], "summary": "The signed decision token once approved or denied", "security": app_sec, "parameters": [P],
     "responses": {"200": json_resp("Decision", {"type": "object", "required": ["state", "token", "exp"], "properties": {"state": {"enum": ["approved", "denied", "redeemed", "executed", "failed"]}, "token": {"type": "string", "description": "JWS compact, EdDSA"}, "exp": {"type": "integer"}}}),
                   "409": problem_resp("`not_decided`: still pending, cancelled or expired"), **errs_app}}},
  "/v1/requests/{id}/redeem": {"post": {"tags": ["application"], "summary": "Consume an approved decision exactly once, before its execution deadline", "security": app_sec, "parameters": [P],
     "responses": {"200": json_resp("Redeemed by this call", {"type": "object", "required": ["redeemed", "token"], "properties": {"redeemed": {"const": True}, "token": {"type": "string"}}}),
                   "409": problem_resp("`already_redeemed`, `not_approved`, or `requester_frozen` (reported; audited as `decision.refused`)"), "410": problem_resp("`decision_expired`: the execution deadline passed"), **errs_app}}},
  "/v1/requests/{id}/outcome": {"post": {"tags": ["application"], "summary": "Report how the executed action went; closes the audit chain for the request", "security": app_sec, "parameters": [P],
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False, "required": ["outcome"], "properties": {"outcome": {"enum": ["succeeded", "failed"]}, "detail": {"type": "string", "maxLength": 1024}}}}}},
     "responses": {"200": json_resp("New state", {"type": "object", "properties": {"state": {"enum": ["executed", "failed"]}}}), "409": problem_resp("`wrong_state`: not redeemed"), **errs_app, **too_large, **json_only}}},
  "/v1/requests/{id}/cancel": {"post": {"tags": ["application"], "summary": "Withdraw a pending request", "security": app_sec, "parameters": [P],
     "responses": {"200": json_resp("Cancelled", {"type": "object", "properties": {"state": {"const": "cancelled"}}}), "409": problem_resp("`wrong_state`: not pending"), **errs_app}}},
  "/v1/enroll": {"post": {"tags": ["approver"], "summary": "Redeem a one-time enrollment code: register the device key and a FIDO credential (attestation bound to the code and device key)",
     "requestBody": {"required": True, "content": {"application/json": {"schema": ref("EnrollBody")}}},
     "responses": {"200": json_resp("Enrolled", ref("Enrolled")),
                   "400": problem_resp("Malformed body or attestation (`malformed_json`, `invalid_base64`, `invalid_device_key`, `invalid_device_name`, ...)"), "403": problem_resp("`invalid_enrollment_code` (unknown, used or expired), `authenticator_not_allowed`, `attestation_not_verified` (an allow-listed model whose attestation does not verify against the FIDO metadata), `demo_key_not_allowed`, `approver_disabled`, or a registration check"),
                   "409": problem_resp("`already_enrolled`"), "429": problem_resp("Rate limited"), **too_large}}},
  "/v1/approver/requests": {"get": {"tags": ["approver"], "summary": "Pending requests this approver may act on, each signed by the server", "security": device_sec,
     "responses": {"200": json_resp("Signed requests", {"type": "array", "items": ref("SignedRequest")}), **{k: errs_dev[k] for k in ("401", "429")}}}},
  "/v1/approver/stream": {"get": {"tags": ["approver"], "summary": "Server-sent events: `request` events (data = SignedRequest, id = audit sequence) for new and changed requests, `resync` after missed changes, keep-alive comments; `Last-Event-ID` replays changes since that id",
     "security": device_sec, "parameters": [{"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
     "responses": {"200": {"description": "Event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}, "400": problem_resp("`invalid_last_event_id`"), **{k: errs_dev[k] for k in ("401", "429")}}}},
  "/v1/approver/requests/{id}/approve": decide("approve", "Approve with a WebAuthn assertion over the approval statement (decision `approve`)"),
  "/v1/approver/requests/{id}/deny": decide("deny", "Deny with a WebAuthn assertion over the approval statement (decision `deny`)"),
  "/v1/approver/requests/{id}/report": decide("report", "Report as suspicious: a denial (assertion over decision `deny`) with a required reason; freezes the requester, cancels their other pending requests and calls the configured webhook"),
 },
 "components": {
  "securitySchemes": {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "`cs_<16 hex id>_<secret>`, created with `countersign-server api-key create`; scoped to one audience"},
    "device": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Countersign-Device device_id=..., ts=..., nonce=..., sig=...`: Ed25519 by the enrolled device key over method, path, timestamp, nonce and body digest (docs/protocol.md); each nonce is accepted once"}},
  "parameters": {"RequestId": {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^req_[A-Za-z0-9_-]+$"}}},
  "schemas": {
    "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"], "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}, "code": {"type": "string", "description": "Stable machine-readable code"}}},
    "Amount": {"type": "object", "additionalProperties": False, "required": ["value", "currency"], "properties": {"value": {"type": "string", "description": "Canonical decimal with the currency's minor units at most, e.g. \"2500\" or \"12.50\""}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
    "Requester": {"type": "object", "additionalProperties": False, "required": ["id", "kind"], "properties": {"id": {"type": "string"}, "kind": {"enum": ["human", "service", "agent"]}}},
    "Change": {"type": "object", "additionalProperties": False, "required": ["field", "before", "after"], "properties": {"field": {"type": "string"}, "before": {"type": ["string", "null"]}, "after": {"type": ["string", "null"]}}},
    "CreateRequest": {"type": "object", "additionalProperties": False, "required": ["idempotency_key", "action", "object", "requester", "session"],
       "properties": {"idempotency_key": {"type": "string"}, "action": {"type": "string", "description": "Catalog action id"}, "object": {"type": "string"},
         "amount": ref("Amount"), "scope": {"type": "string"}, "change": {"type": "array", "items": ref("Change")}, "requester": ref("Requester"),
         "session": {**b64, "description": "base64url SHA-256 of the originating session id"},
         "context": {"type": "object", "additionalProperties": False, "properties": {"ip": {"type": "string"}, "geo": {"type": "string"}, "device_posture": {"type": "string"}, "privileges": {"type": "array", "items": {"type": "string"}}}}}},
    "RequestView": {"type": "object", "required": ["id", "state", "outcome", "digest", "transaction"], "properties": {"id": {"type": "string"},
       "state": {"enum": ["pending", "expired", "approved", "denied", "cancelled", "redeemed", "executed", "failed"]}, "outcome": {"const": "step_up"},
       "digest": {**b64, "description": "SHA-256(\"countersign/tx/v1\\n\" || JCS(transaction))"}, "transaction": {"type": "object", "description": "The canonical transaction (docs/protocol.md)"}}},
    "ServerInfo": {"type": "object", "required": ["rp_id", "origin", "server_key"], "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "rp_id": {"type": "string"}, "origin": {"type": "string"}, "server_key": {"type": "object", "properties": {"kid": {"type": "string"}, "alg": {"const": "EdDSA"}, "x": b64}}}},
    "EnrollBody": {"type": "object", "additionalProperties": False, "required": ["code", "device_name", "device_key", "attestation_object", "client_data_json"],
       "properties": {"code": {"type": "string", "description": "The secret part of a `CSE1.<secret>.<kid>` code"}, "device_name": {"type": "string"}, "device_key": {**b64, "description": "Ed25519 public key of the device"}, "attestation_object": b64, "client_data_json": b64}},
    "Enrolled": {"type": "object", "required": ["approver_id", "device_id", "rp_id", "origin", "server_key"], "properties": {"approver_id": {"type": "string"}, "device_id": {"type": "string"}, "rp_id": {"type": "string"}, "origin": {"type": "string"}, "server_key": {"type": "object"}}},
    "SignedRequest": {"type": "object", "required": ["request", "kid", "signature"], "properties": {"request": {"type": "object", "required": ["transaction", "digest", "state", "approvals"]}, "kid": {"type": "string"}, "signature": b64}},
    "Assertion": assertion,
    "DecisionProgress": {"type": "object", "required": ["counted", "role", "state", "progress"], "properties": {"counted": {"const": True}, "role": {"enum": ["requester", "approver"]}, "state": {"enum": ["pending", "approved", "denied"]},
       "progress": {"type": "object", "required": ["self_step_up_done", "approvers", "approvers_required", "groups"], "properties": {"self_step_up_done": {"type": "boolean"},
         "approvers": {"type": "integer", "description": "Places filled over all groups (one per distinct approver)"}, "approvers_required": {"type": "integer"},
         "groups": {"type": "array", "description": "Each group of the requirements, in their order", "items": {"type": "object", "required": ["group", "approvers", "required"], "properties": {"group": {"type": "string"}, "approvers": {"type": "integer"}, "required": {"type": "integer"}}}}}}}},
  }}}
print(json.dumps(doc, indent=2, ensure_ascii=False))
