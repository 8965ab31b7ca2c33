#!/usr/bin/env bash
# The fault suite: builds the service binaries, then runs the tests of crates/chaos one
# at a time. Each starts the platform as real processes with a private broker, Redis and
# gateway (with its own ledger database), drives steady checkouts (with declines, cancels
# before and after payment, and so refunds, in the kill tests), breaks a part (broker
# down 20 s, also during refunds; gateway erroring and hanging; kill -9 of the gateway or
# either service; two instances of each service, one of each killed mid-load; the whole
# platform restarted; Redis stopped; PostgreSQL restarted;
# database connections cut; a login flood; a price change), heals it, and checks the books
# (orders, ledger net charges, stock returned exactly once); then schemathesis against each service's OpenAPI document
# (the fuzz run, and the contract test of scripts/test.sh with CONTRACT_MAX_EXAMPLES=100), forged
# JWTs, and SQL-injection strings; last, without filters, the backup drill (scripts/test-backups.sh:
# pgBackRest point-in-time and latest restores on a private cluster, about 40 s). Provisions
# dependencies like scripts/test.sh. Pass test-name filters to run a subset: scripts/chaos.sh broker
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_build_packages
ensure_postgres
ensure_redis
ensure_nisshi_installed
# The alert drills (crates/chaos/tests/drills.rs) run a private Prometheus and Alertmanager.
command -v prometheus >/dev/null || apt_install prometheus
command -v prometheus-alertmanager >/dev/null || apt_install prometheus-alertmanager
use_shared_target_dir
export SQLX_OFFLINE=true
export TEST_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/postgres"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

ensure_schemathesis
# The contract test of scripts/test.sh, with more generated examples per operation.
export CONTRACT_MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-100}

log "building the service binaries"
cargo build --locked --quiet --bins
export CHAOS_BIN_DIR="$CARGO_TARGET_DIR/debug"
log "running the fault suite"
cargo test --locked -p chaos --test faults --test drills --test fuzz --test contract -- --ignored --test-threads 1 "$@"
if [ $# -eq 0 ]; then
  log "backup drill: point-in-time recovery with pgBackRest on a private cluster"
  as_root "$ROOT/scripts/test-backups.sh"
fi
