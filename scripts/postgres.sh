#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use is up (the PostgreSQL backend's conformance
# and multi-instance tests). The tests connect to COUNTERSIGN_TEST_POSTGRES, by default
# postgres://postgres@127.0.0.1:5432/test (trust auth for local TCP, as on the project's CI
# machines). Idempotent: starts the local cluster only if nothing answers, installs
# PostgreSQL only if it is missing, and creates the `test` database only if it is missing.
# `--drop-test-databases` drops the per-server databases the tests left (cs_test_*).
set -euo pipefail
URL="${COUNTERSIGN_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
if [ "${1:-}" = "--drop-test-databases" ]; then
  psql "$URL" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'cs\_test\_%'" |
    while read -r name; do psql "$URL" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)"; done
  exit 0
fi

SUDO=""
AS_POSTGRES=(runuser -u postgres --)
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; AS_POSTGRES=(sudo -u postgres); fi

if [ -n "${COUNTERSIGN_TEST_POSTGRES:-}" ]; then
  echo "PostgreSQL: using COUNTERSIGN_TEST_POSTGRES as given"
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
pg_isready -h 127.0.0.1 -p 5432
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh cluster: the database, and trust for local TCP connections as on CI.
  "${AS_POSTGRES[@]}" psql -Atc 'CREATE DATABASE test' >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1' >/dev/null || {
    echo "PostgreSQL answers but postgres@127.0.0.1/test is not reachable without a password:" >&2
    echo "set COUNTERSIGN_TEST_POSTGRES=postgres://user:password@host:port/database" >&2
    exit 1
  }
fi
