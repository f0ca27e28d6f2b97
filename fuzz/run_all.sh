#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, starting from the committed seeds.
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
for target in auth_data cose_key client_data attestation_object decision_token transaction_json; do
  mkdir -p "corpus/$target"
  echo "== $target (${seconds}s)"
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -n 3
done
