#!/usr/bin/env bash
# Makes sure a PostgreSQL server for the tests is up and prints the URL the tests should use
# (stdout; everything else goes to stderr): `export COUNTERSIGN_TEST_POSTGRES="$(bash
# scripts/postgres.sh)"`. In order:
# - COUNTERSIGN_TEST_POSTGRES already set: printed as given;
# - postgres://postgres@127.0.0.1:5432/test answers without a password (trust auth for local
#   TCP, as on the project's CI machines): that one;
# - otherwise (a fresh Debian/Ubuntu cluster asks TCP clients for a password): a role and
#   database `countersign_test` (password `countersign_test`, may create databases) made
#   through the local `postgres` account, and their URL.
# PostgreSQL is installed if missing and the local cluster started if nothing answers.
# `--drop-test-databases` drops the per-server databases the tests left (cs_test_*);
# `--restart` restarts the local cluster (fast shutdown) and waits until it answers again.
set -euo pipefail
TRUST_URL="postgres://postgres@127.0.0.1:5432/test"
OWN_URL="postgres://countersign_test:countersign_test@127.0.0.1:5432/countersign_test"

if [ "${1:-}" = "--drop-test-databases" ]; then
  URL="${COUNTERSIGN_TEST_POSTGRES:-$TRUST_URL}"
  psql "$URL" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'cs\_test\_%'" |
    while read -r name; do psql "$URL" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)"; done
  exit 0
fi
if [ "${1:-}" = "--restart" ]; then
  # For the test of instances riding out a database restart: a fast shutdown cuts every
  # connection, then the same cluster comes back.
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main restart -m fast >&2
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
    sleep 1
  done
  echo "PostgreSQL did not come back after the restart" >&2
  exit 1
fi
if [ -n "${COUNTERSIGN_TEST_POSTGRES:-}" ]; then
  echo "PostgreSQL: using COUNTERSIGN_TEST_POSTGRES as given" >&2
  echo "$COUNTERSIGN_TEST_POSTGRES"
  exit 0
fi

SUDO=""
AS_POSTGRES=(runuser -u postgres --)
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; AS_POSTGRES=(sudo -u postgres); fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
pg_isready -h 127.0.0.1 -p 5432 >&2
for url in "$TRUST_URL" "$OWN_URL"; do
  if PGCONNECT_TIMEOUT=5 psql "$url" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    echo "$url"
    exit 0
  fi
done
echo "PostgreSQL: making the role and database countersign_test for the tests" >&2
"${AS_POSTGRES[@]}" psql -qAt >&2 <<'SQL'
SELECT 'CREATE ROLE countersign_test LOGIN CREATEDB PASSWORD ''countersign_test'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'countersign_test') \gexec
SELECT 'CREATE DATABASE countersign_test OWNER countersign_test'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'countersign_test') \gexec
SQL
if ! psql "$OWN_URL" -qAtc 'SELECT 1' >/dev/null; then
  echo "PostgreSQL answers but neither $TRUST_URL nor the countersign_test role is reachable:" >&2
  echo "set COUNTERSIGN_TEST_POSTGRES=postgres://user:password@host:port/database" >&2
  exit 1
fi
echo "$OWN_URL"
