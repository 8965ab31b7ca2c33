#!/usr/bin/env bash
# The fault suite: builds the service binaries, then runs the tests of crates/chaos one
# at a time. Each starts the platform as real processes with a private broker, Redis and
# gateway (with its own ledger database), drives steady checkouts (with declines, cancels
# before and after payment, and so refunds, in the kill tests), breaks a part (broker
# down 20 s, also during refunds; gateway erroring and hanging; kill -9 of the gateway or
# either service; the whole platform restarted; Redis stopped; PostgreSQL restarted;
# database connections cut; a login flood; a price change), heals it, and checks the books
# (orders, ledger net charges, stock returned exactly once); then schemathesis against each service's OpenAPI document, forged
# JWTs, and SQL-injection strings. Provisions dependencies like scripts/test.sh. Pass test-name filters
# to run a subset: scripts/chaos.sh broker
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_build_packages
ensure_postgres
ensure_redis
ensure_nisshi_installed
use_shared_target_dir
export SQLX_OFFLINE=true
export TEST_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/postgres"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [ ! -x "$STATE_DIR/venv/bin/schemathesis" ]; then
  log "installing schemathesis into $STATE_DIR/venv"
  command -v python3 >/dev/null || apt_install python3
  python3 -m venv "$STATE_DIR/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$STATE_DIR/venv"; }
  "$STATE_DIR/venv/bin/pip" install -q "schemathesis==4.32.5"
fi
export SCHEMATHESIS="$STATE_DIR/venv/bin/schemathesis"

log "building the service binaries"
cargo build --locked --quiet --bins
export CHAOS_BIN_DIR="$CARGO_TARGET_DIR/debug"
log "running the fault suite"
cargo test --locked -p chaos --test faults --test fuzz -- --ignored --test-threads 1 "$@"
