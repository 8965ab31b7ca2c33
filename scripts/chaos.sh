#!/usr/bin/env bash
# The fault suite: builds the service binaries, then runs the tests of crates/chaos one
# at a time. Each starts the platform as real processes with a private broker, Redis and
# gateway, drives steady checkouts, breaks a part (broker down 20 s, gateway erroring and
# hanging, kill -9 of either service, Redis stopped, PostgreSQL restarted), heals it, and
# checks the books. Provisions dependencies like scripts/test.sh. Pass test-name filters
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

log "building the service binaries"
cargo build --locked --quiet --bins
export CHAOS_BIN_DIR="$CARGO_TARGET_DIR/debug"
log "running the fault suite"
cargo test --locked -p chaos --test faults -- --ignored --test-threads 1 "$@"
