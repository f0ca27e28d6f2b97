//! clientDataJSON parser: whatever parses starts with exactly what the builder writes.
#![no_main]
use countersign_core::webauthn::ClientData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = ClientData::parse(data) {
        let built = parsed.to_json();
        let prefix = &built[..built.len() - 1];
        assert!(data.starts_with(prefix.as_bytes()));
    }
});
