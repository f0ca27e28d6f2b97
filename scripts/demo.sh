#!/usr/bin/env bash
# The demo: the server on its embedded SQLite default (./countersign-demo, fresh every run)
# with the sample catalog and policies, the desktop app enrolled with a clearly labelled demo
# software key, sample requests (a payout, a larger payout needing two groups, a bank-detail
# change, a recovery update, a privilege grant needing four eyes, an AI agent's tool call),
# then the app opens. Without a display the
# server keeps running for the command-line approver instead.
#
#   bash scripts/demo.sh
#
# Environment: COUNTERSIGN_DEMO_LISTEN (default 127.0.0.1:8710); COUNTERSIGN_DEMO_EXIT=1 stops
# after the sample requests (used by the tests); COUNTERSIGN_DEMO_NO_BUILD=1 uses the binaries
# already built; COUNTERSIGN_DEMO_RELEASE=1 builds and runs release binaries (benchmarks);
# COUNTERSIGN_DEMO_AUTOSTART=1 also turns on the app's start at login (off otherwise);
# COUNTERSIGN_DEMO_DESKTOP_BIN runs the desktop programs from that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

LISTEN=${COUNTERSIGN_DEMO_LISTEN:-127.0.0.1:8710}
BASE="http://$LISTEN"
DATA="$ROOT/countersign-demo"
BIN="$ROOT/target/debug"
PROFILE_FLAG=()
if [ -n "${COUNTERSIGN_DEMO_RELEASE:-}" ]; then
  BIN="$ROOT/target/release"
  PROFILE_FLAG=(--release)
fi
# Where the desktop programs are (the benchmark points this at its `desktop` profile build).
DESKTOP_BIN="${COUNTERSIGN_DEMO_DESKTOP_BIN:-$BIN}"

if [ -z "${COUNTERSIGN_DEMO_NO_BUILD:-}" ]; then
  COUNTERSIGN_SETUP_NO_TEST_TOOLS=1 bash scripts/setup.sh
  echo "== building the UI and the binaries (the first build takes several minutes)"
  (cd ui && npm ci --no-audit --no-fund --silent && npm run --silent build)
  cargo build --locked "${PROFILE_FLAG[@]}" -p countersign-server -p countersign-cli -p countersign-desktop -p countersign-tray
fi

if curl -fs "$BASE/health" >/dev/null 2>&1; then
  echo "something already answers on $BASE: stop it, or pick another address with COUNTERSIGN_DEMO_LISTEN" >&2
  exit 1
fi
rm -rf "$DATA"
mkdir -p "$DATA/desktop"
chmod 700 "$DATA"
S="$BIN/countersign-server --data-dir $DATA/server"

echo "== server data, approvers and the payouts application's API key"
API_KEY=$($S api-key create --name "demo payouts" --audience payouts-service \
  --requesters '*@example.com' --requesters 'copilot-*' 2>/dev/null)
printf '%s\n' "$API_KEY" >"$DATA/api-key" # for scripts/bench_desktop.sh; the folder is 0700
$S approver add --id you@example.com --name "You (demo)" \
  --group finance-approvers --group security-admins --group agent-owners >/dev/null
$S approver add --id bob@example.com --name "Bob" --group finance-approvers --group security-admins >/dev/null
CODE=$($S enroll-code create --approver you@example.com 2>/dev/null)

# The demo key is this project's software key, which a server refuses unless told.
$S serve --listen "$LISTEN" --allow-demo-keys >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
# The tray agent outlives the window: stop it with the demo ("[c]": a pattern that does not
# match a command line quoting it).
# The server is waited for: it writes its last audit checkpoint as it stops, and a demo
# started right after must find the address free.
trap 'pkill -f "[c]ountersign-tray --profile $PROFILE" 2>/dev/null || true; kill $SERVER_PID 2>/dev/null && wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "$BASE/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$BASE/health" >/dev/null || { echo "the server did not start; see $DATA/server.log" >&2; exit 1; }
echo "   server on $BASE (log: $DATA/server.log)"

echo "== enrolling the desktop app's profile with the DEMO SOFTWARE KEY (not a hardware key)"
# The demo keeps the device key in a file inside ./countersign-demo so it never touches your
# own keyring; a real enrollment keeps it in the system keyring.
PROFILE="$DATA/desktop/profile.json"
"$BIN/countersign" --profile "$PROFILE" enroll --server "$BASE" --code "$CODE" \
  --key "soft:$DATA/desktop/demo-soft-key.json" \
  --insecure-device-key-file "$DATA/desktop/device.key" --device-name "demo desktop" \
  >/dev/null 2>"$DATA/enroll.log" || { cat "$DATA/enroll.log" >&2; exit 1; }
echo "   enrolled you@example.com (profile $PROFILE)"

session() { printf '%s' "$1" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='; }
create() {
  curl -fs "$BASE/v1/requests" -H "authorization: Bearer $API_KEY" \
    -H 'content-type: application/json' -d "$1" >/dev/null \
    || { echo "creating a sample request failed: $1" >&2; exit 1; }
}
S1=$(session alice-laptop-session)
S2=$(session copilot-7-run-4411)
S3=$(session you-browser-session)
echo "== sample requests, as the protected applications would ask"
create '{"idempotency_key":"demo-payout","action":"payout.send","object":"vendor:4711",
  "amount":{"value":"25000","currency":"EUR"},"requester":{"id":"alice@example.com","kind":"human"},
  "session":"'"$S1"'","context":{"ip":"198.51.100.7","geo":"DE","device_posture":"managed","privileges":["payments"]}}'
echo "   a payout of 25,000.00 EUR to vendor:4711 by alice (her own key and one finance approver)"
create '{"idempotency_key":"demo-treasury","action":"payout.send","object":"vendor:9020",
  "amount":{"value":"150000","currency":"EUR"},"requester":{"id":"alice@example.com","kind":"human"},
  "session":"'"$S1"'","context":{"ip":"198.51.100.7","geo":"DE","device_posture":"managed","privileges":["payments"]}}'
echo "   a payout of 150,000.00 EUR to vendor:9020 by alice (her own key, one finance approver AND one security administrator)"
create '{"idempotency_key":"demo-bank","action":"payout.bank_details.change","object":"vendor:4711",
  "change":[{"field":"iban","before":"DE89370400440532013000","after":"DE44500105175407324931"}],
  "requester":{"id":"alice@example.com","kind":"human"},"session":"'"$S1"'",
  "context":{"device_posture":"managed","privileges":["payments"]}}'
echo "   a bank-detail change for vendor:4711 by alice"
create '{"idempotency_key":"demo-recovery","action":"account.recovery.update","object":"user:you@example.com",
  "change":[{"field":"recovery_email","before":"you@example.com","after":"you@new.example"}],
  "requester":{"id":"you@example.com","kind":"human"},"session":"'"$S3"'",
  "context":{"device_posture":"managed","privileges":[]}}'
echo "   your own recovery update (self step-up)"
create '{"idempotency_key":"demo-grant","action":"iam.privilege.grant","object":"user:carol@example.com",
  "scope":"role:production-admin","requester":{"id":"alice@example.com","kind":"human"},"session":"'"$S1"'",
  "context":{"device_posture":"managed","privileges":["iam"]}}'
echo "   a privilege grant that needs two security administrators (four eyes: you and bob)"
create '{"idempotency_key":"demo-agent","action":"agent.tool.invoke","object":"tool:refund.issue",
  "scope":"order:88231","requester":{"id":"copilot-7","kind":"agent"},"session":"'"$S2"'",
  "context":{"device_posture":"managed","privileges":["refunds"]}}'
echo "   an AI agent's refund tool call"

CLI="$BIN/countersign --profile $PROFILE"
if [ -n "${COUNTERSIGN_DEMO_EXIT:-}" ]; then
  PENDING=$($CLI --json pending)
  COUNT=$(printf '%s' "$PENDING" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  echo "== $COUNT requests are waiting for you@example.com; stopping (COUNTERSIGN_DEMO_EXIT)"
  [ "$COUNT" = 6 ] || { echo "expected 6 pending requests, saw $COUNT" >&2; exit 1; }
  exit 0
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo
  echo "No display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot open."
  echo "The server keeps running on $BASE; approve from the command line:"
  echo "  $CLI pending"
  echo "  $CLI approve REQUEST_ID"
  echo "Press Ctrl-C to stop."
  wait $SERVER_PID
  exit 0
fi

# Start at login stays off unless asked for (COUNTERSIGN_DEMO_AUTOSTART=1).
APP_FLAGS=()
if [ -n "${COUNTERSIGN_DEMO_AUTOSTART:-}" ]; then APP_FLAGS+=(--start-at-login); fi
# COUNTERSIGN_DEMO_HIDDEN=1 starts only the tray agent, without a window (as at login).
if [ -n "${COUNTERSIGN_DEMO_HIDDEN:-}" ]; then APP_FLAGS+=(--hidden); fi
echo "== opening the desktop app; launched at $(date +%s%3N) ms"
echo "   Closing its window keeps it in the tray; quit from the tray menu or Settings → Quit"
echo "   (or press Ctrl-C here) to stop the demo."
COUNTERSIGN_PROFILE="$PROFILE" COUNTERSIGN_DEMO_KEY="$DATA/desktop/demo-soft-key.json" \
  "$DESKTOP_BIN/countersign-desktop" "${APP_FLAGS[@]}" || echo "the desktop app stopped with an error (see above)" >&2
# The window has closed (or was never opened); the tray agent keeps running until Quit.
while pgrep -f "[c]ountersign-tray --profile $PROFILE" >/dev/null; do sleep 1; done
