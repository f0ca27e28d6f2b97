//! Where the workspace's binaries are. A library cannot see Cargo's `CARGO_BIN_EXE_*` (only a
//! package's own integration tests can), so the binary is found in this order:
//!
//! 1. `COUNTERSIGN_SERVER_BIN` (or `COUNTERSIGN_<NAME>_BIN` for another binary), when set;
//! 2. the profile directory of the running test (`target/<profile>/`), where
//!    `cargo build --workspace --bins` and `cargo test --workspace` put it;
//! 3. otherwise it is built there now, with `cargo build --bin <name>`, so that
//!    `cargo test -p <any package>` works on a clean tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The server binary.
pub fn server_bin() -> PathBuf {
    workspace_bin("countersign-server", "countersign-server")
}

/// The binary `name` of workspace package `package`.
pub fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let variable = format!("COUNTERSIGN_{}_BIN", env_name(name));
    if let Some(path) = std::env::var_os(&variable) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{variable}={} is not a file",
            path.display()
        );
        return path;
    }
    let bin = profile_dir().join(name);
    if !bin.is_file() {
        build(package, name, &bin);
    }
    bin
}

/// `countersign-server` → `SERVER` (the project's prefix dropped), for the override's name.
fn env_name(name: &str) -> String {
    name.trim_start_matches("countersign-")
        .replace('-', "_")
        .to_uppercase()
}

/// `target/<profile>/`: test executables run from its `deps/` (examples from `examples/`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the test executable's folder");
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// Builds `name` into the profile directory; one build at a time for the tests of a process.
fn build(package: &str, name: &str, bin: &Path) {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if bin.is_file() {
        return;
    }
    let profile = profile_dir();
    let target = profile.parent().expect("the target folder");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(["build", "-q", "-p", package, "--bin", name, "--target-dir"])
        .arg(target);
    if profile.file_name().and_then(|n| n.to_str()) == Some("release") {
        command.arg("--release");
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(
        status.success() && bin.is_file(),
        "building {name} failed ({status}); build it with `cargo build --workspace --bins`, or \
         name it in COUNTERSIGN_{}_BIN",
        env_name(name)
    );
}
