//! Registration verification over arbitrary attestation objects and client data.
#![no_main]
use countersign_core::webauthn::{verify_registration, RegistrationPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where to split the input into the two untrusted blobs.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (client_data, attestation) = rest.split_at(at);
    let policy = RegistrationPolicy {
        rp_id: "approvals.example.com",
        origin: "https://approvals.example.com",
        challenge: &[0; 32],
        require_user_verification: false,
    };
    let _ = verify_registration(&policy, attestation, client_data);
    // Attestation objects alone, with client data that passes the client-data checks.
    let cd = br#"{"type":"webauthn.create","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","origin":"https://approvals.example.com","crossOrigin":false}"#;
    let _ = verify_registration(&policy, rest, cd);
});
