//! The wall clock, for tests that wait out a deadline the server checks.

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sleeps until the clock has passed `unix` (a deadline the server checks with `>`).
pub fn sleep_until_after(unix: i64) {
    while unix_now() <= unix {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
