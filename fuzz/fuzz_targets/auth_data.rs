//! authenticatorData parser: any bytes give a value or a typed error, never a panic; a parsed
//! registration credential re-encodes to a key the parser accepts again.
#![no_main]
use countersign_core::webauthn::{AuthenticatorData, CredentialPublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = AuthenticatorData::parse(data) {
        if let Some(attested) = parsed.attested {
            let again = CredentialPublicKey::from_cose_bytes(&attested.public_key.to_cose_bytes());
            assert_eq!(again.as_ref(), Ok(&attested.public_key));
        }
    }
});
