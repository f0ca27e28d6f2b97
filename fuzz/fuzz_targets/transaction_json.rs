//! Transaction parser: accepted transactions have a stable digest across a canonical round trip.
#![no_main]
use countersign_core::transaction::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::from_json(data) {
        let canonical = tx
            .canonical_json()
            .expect("a valid transaction canonicalizes");
        let again = Transaction::from_json(&canonical).expect("its canonical form parses");
        assert_eq!(again.digest().ok(), tx.digest().ok());
    }
});
