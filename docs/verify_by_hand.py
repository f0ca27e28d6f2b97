#!/usr/bin/env python3
"""Verifies the golden vectors the way docs/protocol.md describes, without any Countersign code:
Python's standard library for JSON, SHA-256 and base64url, and the `openssl` command for the
ES256 and Ed25519 signature checks. It is an independent second implementation of the
verifier; CI runs it so the document and the Rust code cannot drift apart.

Usage: python3 docs/verify_by_hand.py   (from the repository root)
"""
import base64, hashlib, json, pathlib, subprocess, sys, tempfile

VECTORS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "vectors"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jcs(value) -> bytes:
    """RFC 8785 for Countersign's data (strings, integers, booleans, null, ASCII member names)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def openssl_verify(spki_der: bytes, message: bytes, signature: bytes, ed25519: bool) -> bool:
    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d)
        (p / "key.der").write_bytes(spki_der)
        (p / "msg").write_bytes(message)
        (p / "sig").write_bytes(signature)
        if ed25519:
            cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", p / "key.der",
                   "-rawin", "-in", p / "msg", "-sigfile", p / "sig"]
        else:
            cmd = ["openssl", "dgst", "-sha256", "-keyform", "DER", "-verify", p / "key.der",
                   "-signature", p / "sig", p / "msg"]
        return subprocess.run(cmd, capture_output=True).returncode == 0


def spki_from_cose(cose: bytes) -> tuple[bytes, bool]:
    """Minimal reader for the CTAP2-canonical COSE keys in the vectors (small int keys, bstr values)."""
    assert cose[0] in (0xA4, 0xA5), "expected a map of 4 or 5 entries"
    fields, i = {}, 1
    for _ in range(cose[0] - 0xA0):
        key = cose[i] if cose[i] < 0x18 else -1 - (cose[i] - 0x20)
        i += 1
        if cose[i] == 0x58:  # byte string, one-byte length
            n = cose[i + 1]
            fields[key] = cose[i + 2:i + 2 + n]
            i += 2 + n
        else:  # small integer
            fields[key] = cose[i] if cose[i] < 0x18 else -1 - (cose[i] - 0x20)
            i += 1
    if fields[3] == -7:  # ES256: kty 2, crv 1 (P-256)
        assert fields[1] == 2 and fields[-1] == 1
        prefix = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
        return prefix + b"\x04" + fields[-2] + fields[-3], False
    assert fields[3] == -8 and fields[1] == 1 and fields[-1] == 6  # EdDSA, OKP, Ed25519
    return bytes.fromhex("302a300506032b6570032100") + fields[-2], True


PASSED = 0


def check(condition: bool, what: str) -> None:
    global PASSED
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(f"verify_by_hand: {PASSED} passed, 1 failed")
    PASSED += 1
    print(f"ok  {what}")


def main() -> None:
    txs = json.loads((VECTORS / "transaction.json").read_text())["cases"]
    for case in [c for c in txs if c["name"].startswith("ok_")]:
        canonical = jcs(case["transaction"])
        check(canonical.decode() == case["canonical"], f"transaction {case['name']}: canonical JSON")
        check(b64url(sha256(b"countersign/tx/v1\n" + canonical)) == case["digest"], f"transaction {case['name']}: digest")

    for case in json.loads((VECTORS / "approval_statement.json").read_text())["cases"]:
        challenge = sha256(b"countersign/approval/v1\n" + jcs(case["statement"]))
        check(b64url(challenge) == case["challenge"], f"statement {case['name']}: challenge")

    for case in json.loads((VECTORS / "assertion.json").read_text())["cases"]:
        name = case["name"]
        statement = {"version": 1, "transaction": case["transaction_digest"], "decision": case["decision"], "approver": case["approver"]}
        challenge = sha256(b"countersign/approval/v1\n" + jcs(statement))
        expected_cd = ('{"type":"webauthn.get","challenge":"%s","origin":"%s","crossOrigin":false}'
                       % (b64url(challenge), case["origin"]))
        auth_data = bytes.fromhex(case["authenticator_data"])
        flags, counter = auth_data[32], int.from_bytes(auth_data[33:37], "big")
        spki, is_ed = spki_from_cose(bytes.fromhex(case["credential_public_key"]))
        cd = case["client_data_json"].encode()
        results = {
            "challenge_mismatch": case["client_data_json"] == expected_cd or b64url(challenge) in case["client_data_json"],
            "origin_mismatch": f'"origin":"{case["origin"]}"' in case["client_data_json"],
            "rp_id_mismatch": auth_data[:32] == sha256(case["rp_id"].encode()),
            "user_not_present": bool(flags & 0x01),
            "user_not_verified": bool(flags & 0x04) or not case["require_user_verification"],
            "bad_signature": openssl_verify(spki, auth_data + sha256(cd), bytes.fromhex(case["signature"]), is_ed),
            "counter_regression": counter > case["stored_sign_count"] or counter == case["stored_sign_count"] == 0,
        }
        failed = [code for code, passed in results.items() if not passed]
        if name.startswith("ok_"):
            check(not failed and cd.decode() == expected_cd, f"assertion {name}: every check passes")
        else:
            check(case["error"] in failed, f"assertion {name}: refused ({case['error']})")

    doc = json.loads((VECTORS / "decision_token.json").read_text())
    keys = {k["kid"]: k for k in doc["jwks"]["keys"]}
    for kid, jwk in keys.items():
        thumb = b64url(sha256(('{"crv":"Ed25519","kty":"OKP","x":"%s"}' % jwk["x"]).encode()))
        check(thumb == kid, "JWKS: kid is the RFC 7638 thumbprint")
    tx_digest = b64url(sha256(b"countersign/tx/v1\n" + jcs(doc["transaction"])))
    for case in doc["cases"]:
        token, reasons = case["token"], []
        parts = token.split(".")
        if len(parts) != 3:
            reasons.append("not_compact")
        else:
            try:
                header = json.loads(unb64url(parts[0]))
                claims = json.loads(unb64url(parts[1]))
                signature = unb64url(parts[2])
            except Exception:
                header, claims, signature = {}, {}, b""
                reasons.append("base64")
            if header.get("alg") != "EdDSA":
                reasons.append("unsupported_algorithm")
            elif header.get("typ") != "countersign-decision+jwt":
                reasons.append("wrong_type")
            elif header.get("kid") not in keys:
                reasons.append("unknown_key")
            else:
                spki = bytes.fromhex("302a300506032b6570032100") + unb64url(keys[header["kid"]]["x"])
                signing_input = (parts[0] + "." + parts[1]).encode()
                if "=" in token or not openssl_verify(spki, signing_input, signature, True):
                    reasons.append("bad_signature")
                elif claims["aud"] != doc["audience"]:
                    reasons.append("wrong_audience")
                elif claims["exp"] <= doc["now"]:
                    reasons.append("expired")
                elif claims["transaction"] != tx_digest:
                    reasons.append("transaction_mismatch")
        if case["name"].startswith("ok_"):
            check(not reasons and claims["decision"] == "approve", f"token {case['name']}: verifies and approves the transaction")
        else:
            # The Rust verifier reports base64 for a padded signature; this script, the signature check.
            check(case["error"] in reasons or (case["error"] == "base64" and "bad_signature" in reasons),
                  f"token {case['name']}: refused ({case['error']})")

    audit = json.loads((VECTORS / "audit_chain.json").read_text())
    cp = audit["checkpoint"]
    body = {k: v for k, v in cp.items() if k != "signature"}
    jwk = {k["kid"]: k for k in audit["jwks"]["keys"]}[cp["kid"]]
    spki = bytes.fromhex("302a300506032b6570032100") + unb64url(jwk["x"])
    check(openssl_verify(spki, b"countersign/checkpoint/v1\n" + jcs(body), unb64url(cp["signature"]), True),
          "audit: checkpoint signature")
    for case in audit["cases"]:
        prev, seq, ok = "A" * 43, 0, True
        for entry in case["entries"]:
            unsealed = {k: v for k, v in entry.items() if k != "hash"}
            own = b64url(sha256(b"countersign/audit/v1\n" + jcs(unsealed)))
            ok = ok and entry["seq"] == seq + 1 and entry["prev"] == prev and own == entry["hash"]
            prev, seq = entry["hash"], entry["seq"]
        covered = [e for e in case["entries"] if e["seq"] == cp["seq"]]
        ok = ok and len(covered) == 1 and covered[0]["hash"] == cp["head"]
        check(ok == case["name"].startswith("ok_"), f"audit {case['name']}: {'verifies' if ok else 'refused'}")


if __name__ == "__main__":
    main()
    print(f"verify_by_hand: {PASSED} passed, 0 failed")
