//! COSE_Key parser: accepted keys round-trip through the canonical encoding.
#![no_main]
use countersign_core::webauthn::CredentialPublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = CredentialPublicKey::from_cose_bytes(data) {
        assert_eq!(
            CredentialPublicKey::from_cose_bytes(&key.to_cose_bytes()),
            Ok(key.clone())
        );
        // Verification with garbage never panics.
        let _ = key.verify(data, data);
    }
});
