#!/usr/bin/env bash
# Measures the release desktop app (docs/benchmarks.md): cold start to first paint, and the
# memory (PSS, from /proc/PID/smaps_rollup) of all the app's processes with the window open,
# then after IDLE_SECONDS (default 300) idle (the window app's processes plus the tray agent);
# then in the tray without a window (started with --hidden, as at login: only the tray agent
# runs) at once, after TRAY_SECONDS (default 600), and after 200 requests were
# created and withdrawn. Runs the demo (server, six requests, the app) on a private Xvfb
# display and D-Bus session. Needs what scripts/demo.sh needs.
#
#   bash scripts/bench_desktop.sh [RUNS]      # RUNS cold starts (default 3), then the idle runs
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
IDLE_SECONDS=${IDLE_SECONDS:-300}
TRAY_SECONDS=${TRAY_SECONDS:-600}
LOG=$(mktemp)
(cd ui && npm ci --no-audit --no-fund --silent && npm run --silent build)
# The server and CLI as released; the two desktop programs as shipped (profile `desktop`).
cargo build --locked --release -p countersign-server -p countersign-cli
cargo build --locked --profile desktop -p countersign-desktop -p countersign-tray
BIN=target/desktop

Xvfb :77 -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null || true' EXIT
sleep 1

# PSS in kB of processes and all their descendants, each counted once.
tree_pss() {
  local pids=() i=0 root
  for root in "$@"; do [[ " ${pids[*]} " == *" $root "* ]] || pids+=("$root"); done
  while [ $i -lt ${#pids[@]} ]; do
    for child in $(cat /proc/"${pids[$i]}"/task/*/children 2>/dev/null); do
      [[ " ${pids[*]} " == *" $child "* ]] || pids+=("$child")
    done
    i=$((i + 1))
  done
  local total=0 anon=0 names=""
  for pid in "${pids[@]}"; do
    local pss a
    pss=$(awk '/^Pss:/ {print $2}' /proc/"$pid"/smaps_rollup 2>/dev/null || echo 0)
    a=$(awk '/^Pss_Anon:/ {print $2}' /proc/"$pid"/smaps_rollup 2>/dev/null || echo 0)
    total=$((total + ${pss:-0}))
    anon=$((anon + ${a:-0}))
    names="$names $(cat /proc/"$pid"/comm 2>/dev/null)=${pss:-0}kB"
  done
  # Anonymous memory is the processes' own; the rest is library pages, which the kernel may
  # drop from an idle process when something beside it needs memory.
  echo "$total kB PSS ($anon kB anonymous) in ${#pids[@]} processes:$names"
}

run_demo() {
  : >"$LOG"
  DISPLAY=:77 COUNTERSIGN_DEMO_HIDDEN=${HIDDEN:-} COUNTERSIGN_DEMO_NO_BUILD=1 COUNTERSIGN_DEMO_RELEASE=1 COUNTERSIGN_DEMO_DESKTOP_BIN="$PWD/$BIN" COUNTERSIGN_DEMO_LISTEN=127.0.0.1:18790 \
    NO_AT_BRIDGE=1 \
    dbus-run-session -- bash scripts/demo.sh >"$LOG" 2>&1 &
  DEMO=$!
  if [ -n "${HIDDEN:-}" ]; then
    for _ in $(seq 1 600); do grep -q "launched at" "$LOG" && break; sleep 0.1; done
    return
  fi
  for _ in $(seq 1 600); do grep -q "first paint" "$LOG" && break; sleep 0.1; done
  local launched painted
  launched=$(sed -n 's/.*launched at \([0-9]*\) ms.*/\1/p' "$LOG")
  painted=$(sed -n 's/.*first paint .* at \([0-9]*\) ms.*/\1/p' "$LOG")
  echo "cold start to first paint: $((painted - launched)) ms ($(grep -o 'first paint [0-9]* ms after main' "$LOG"))"
}

stop_demo() {
  pkill -f "$BIN/countersign-desktop" 2>/dev/null || true
  pkill -f "$BIN/countersign-tray" 2>/dev/null || true
  wait "$DEMO" 2>/dev/null || true
}

for run in $(seq 1 "$RUNS"); do
  echo "== run $run"
  run_demo
  stop_demo
done
echo "== memory: window open, then idle ${IDLE_SECONDS} s"
run_demo
sleep 10
# The window app (its command line starts with it; the agent's only names it as its window
# command) with its web processes, and the tray agent.
APP=$(pgrep -f "^[^ ]*$BIN/countersign-desktop" | head -1)
AGENT=$(pgrep -f "^[^ ]*$BIN/countersign-tray" | head -1)
echo "window open: $(tree_pss "$APP" "$AGENT")"
sleep "$IDLE_SECONDS"
echo "after ${IDLE_SECONDS} s idle: $(tree_pss "$APP" "$AGENT")"
stop_demo

echo "== memory: in the tray without a window (--hidden: only the tray agent runs), idle ${TRAY_SECONDS} s, then 200 requests"
HIDDEN=1 run_demo
sleep 10
APP=$(pgrep -f "^[^ ]*$BIN/countersign-tray" | head -1)
if pgrep -f "^[^ ]*$BIN/countersign-desktop" >/dev/null; then
  echo "a window process runs in the tray-only run: $(pgrep -af "^[^ ]*$BIN/countersign-desktop")" >&2
  exit 1
fi
echo "in the tray: $(tree_pss "$APP")"
sleep "$TRAY_SECONDS"
echo "after ${TRAY_SECONDS} s in the tray: $(tree_pss "$APP")"
BASE=http://127.0.0.1:18790
KEY=$(cat countersign-demo/api-key)
SESSION=$(printf bench-session | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
# One requester per request: the server allows one requester 30 step-ups a minute.
for i in $(seq 1 200); do
  ANSWER=$(curl -s "$BASE/v1/requests" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d '{"idempotency_key":"bench-'"$i"'","action":"agent.tool.invoke","object":"tool:refund.issue",
      "scope":"order:'"$i"'","requester":{"id":"copilot-bench-'"$i"'","kind":"agent"},
      "session":"'"$SESSION"'",
      "context":{"device_posture":"managed","privileges":["refunds"]}}')
  ID=$(printf '%s' "$ANSWER" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') \
    || { echo "creating request $i failed: $ANSWER" >&2; exit 1; }
  sleep 0.2
  curl -fs -X POST "$BASE/v1/requests/$ID/cancel" -H "authorization: Bearer $KEY" >/dev/null
done
sleep 30
echo "after 200 requests came and went: $(tree_pss "$APP")"
stop_demo
rm -f "$LOG"
