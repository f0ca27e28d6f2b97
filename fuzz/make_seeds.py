#!/usr/bin/env python3
"""Writes seed inputs for each fuzz target from the golden vectors (fuzz/seeds/<target>/)."""
import json, pathlib, hashlib

root = pathlib.Path(__file__).resolve().parent.parent
vectors = root / "tests" / "vectors"
seeds = root / "fuzz" / "seeds"

def put(target, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)

assertion = json.loads((vectors / "assertion.json").read_text())
for case in assertion["cases"]:
    put("auth_data", bytes.fromhex(case["authenticator_data"]))
    put("cose_key", bytes.fromhex(case["credential_public_key"]))
    put("client_data", case["client_data_json"].encode())
for case in json.loads((vectors / "client_data.json").read_text())["cases"]:
    put("client_data", case["client_data_json"].encode())
tokens = json.loads((vectors / "decision_token.json").read_text())
for case in tokens["cases"]:
    put("decision_token", case["token"].encode())
put("decision_token", json.dumps(tokens["jwks"]).encode())
for case in json.loads((vectors / "transaction.json").read_text())["cases"]:
    put("transaction_json", (json.dumps(case["transaction"]) if "transaction" in case else case["json"]).encode())
# W3C WebAuthn L3 §16.2 registration (see crates/countersign-core/tests/webauthn.rs).
w3c = bytes.fromhex(
    "a363666d74646e6f6e656761747453746d74a068617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b559000000008446ccb9ab1db374750b2367ff6f3a1f0020f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220"
)
put("attestation_object", bytes([0]) + w3c)
put("auth_data", w3c[w3c.index(bytes.fromhex("bfabc374")):])
