#!/usr/bin/env bash
# Runs every check and test of Countersign: formatting, lints, unit, integration and vector tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "== PostgreSQL for the PostgreSQL backend's tests (started if it is not running)"
COUNTERSIGN_TEST_POSTGRES="$(bash scripts/postgres.sh)"
export COUNTERSIGN_TEST_POSTGRES

echo "== the desktop UI: install from the lockfile, type-check, unit tests, build (the app embeds ui/dist)"
(cd ui && npm ci --no-audit --no-fund && npm test && npm run build)

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the approver builds without its demo key (feature demo-key off)"
cargo check -q -p countersign-approver --no-default-features --lib --locked
echo "== cargo test"
# The binaries first: `cargo test` builds a package's binary only for that package's own
# tests, and the desktop app's tests need the tray agent (another package) beside the app.
cargo build --workspace --bins --locked
cargo test --workspace --all-targets --locked
echo "== the server's integration and end-to-end tests again, each server on a PostgreSQL database of its own"
COUNTERSIGN_TEST_BACKEND=postgres cargo test --workspace --locked \
  --test approval_flow --test crash --test expiry --test http_api --test long_poll \
  --test report_and_limits --test sdk --test tls_and_shutdown \
  --test attacks --test cli_flows --test payouts
bash scripts/postgres.sh --drop-test-databases
echo "== doc tests"
cargo test --workspace --doc --locked
echo "== the virtual USB key in a QEMU guest: its transport through the guest kernel's uhid and hidraw"
bash scripts/vm.sh selftest usb-roundtrip usb-no-touch usb-cancel usb-two-keys usb-removed
echo "== the README demo: server, enrolled demo profile, sample requests (headless, stops after)"
COUNTERSIGN_DEMO_NO_BUILD=1 COUNTERSIGN_DEMO_EXIT=1 COUNTERSIGN_DEMO_LISTEN=127.0.0.1:18711 bash scripts/demo.sh
echo "== the protocol walkthrough and the server-only demo"
# Built for the whole workspace (seconds: `cargo test` compiled them already); `cargo run -p …`
# would unify features for one package only and rebuild half the dependencies.
cargo build -q --workspace --examples --locked
target/debug/examples/walkthrough
COUNTERSIGN_DEMO_EXIT=1 COUNTERSIGN_DEMO_LISTEN=127.0.0.1:18710 target/debug/examples/demo
echo "== independent verification of the golden vectors (Python + openssl)"
python3 docs/verify_by_hand.py
