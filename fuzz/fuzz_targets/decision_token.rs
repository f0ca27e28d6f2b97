//! Decision token verification over arbitrary strings: never a panic, never an acceptance
//! (nobody but the test key can sign).
#![no_main]
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, Expectations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = SigningKey::from_seed(&[7; 32]);
    let keys = KeySet::new([key.verifying_key().clone()]);
    let expect = Expectations {
        issuer: "https://a.example",
        audience: "app",
        now: 1_800_000_000,
        leeway_seconds: 0,
    };
    assert!(token::verify(text, &keys, &expect).is_err());
    let _ = KeySet::from_jwks_json(data);
});
