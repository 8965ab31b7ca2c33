#!/usr/bin/env bash
# Runs every check and test of the platform against real dependencies:
# provisions PostgreSQL, Redis and the nisshi broker as scripts/up.sh does, then runs
# cargo fmt --check, clippy with warnings denied, cargo deny (RustSec advisories against the
# machine's snapshot ../shared/advisory-db when there is one, else the live database;
# bans, licences, sources: deny.toml), the whole Rust test suite (unit and
# integration, and the browser journeys in Chromium), the operator-asset checks (alert
# rules with promtool, dashboards, manifests validated against the Kubernetes schemas,
# the compose file with docker-compose, the Dockerfile with hadolint, every variable
# against the binaries' --help) and their test on deliberately broken copies, the
# container smoke (scripts/container-smoke.sh: the image's runtime stage built from
# those binaries with podman, each service started in it as the pods run it, the
# quickstart against it), and the contract test:
# schemathesis, with every check and its stateful phase, against each service's OpenAPI
# document (crates/chaos/tests/contract.rs, about two minutes). Ends with one summary
# line, "N passed, N failed"; exits non-zero on any
# failure.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_build_packages
# The browser tests (crates/browser-tests) drive Debian's Chromium through chromedriver.
apt_install chromium chromium-driver
# crates/chaos/tests/monitoring.rs runs a private Prometheus (Debian's package).
command -v prometheus >/dev/null || apt_install prometheus
ensure_postgres
ensure_redis
ensure_broker
ensure_nisshi_installed
ensure_schemathesis
use_shared_target_dir
export SQLX_OFFLINE=true
export TEST_DATABASE_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/postgres"
export TEST_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT"
export TEST_REDIS_URL="redis://127.0.0.1:6379"

# Each test makes its own databases and topics and drops them; a run that was cut short
# leaves some, which this sweeps (also at the end, so the run leaves none behind).
sweep_test_data

failed_steps=()
step() { # name command...
  local name=$1
  shift
  log "$name"
  if ! "$@"; then failed_steps+=("$name"); fi
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
step "dependency advisories" bash scripts/check-dependencies.sh

log "cargo test"
test_log=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
[ "$test_status" -eq 0 ] || failed_steps+=("cargo test")

# After the test run, which built the service binaries: the operator-asset checks compare
# the variables compose and the manifests set with each binary's --help.
export CHECK_OPS_BIN_DIR="$CARGO_TARGET_DIR/debug" CHECK_OPS_REQUIRE_BINARIES=1
step "operator assets" bash scripts/check-ops-assets.sh
step "operator-asset checks catch broken files" bash scripts/test-check-ops-assets.sh
# The image built from those binaries and started as the pods run it, answering the
# quickstart (15 to 30 s; about 2 minutes the first time on a machine, which makes its base image).
step "container smoke" bash scripts/container-smoke.sh --bin-dir "$CARGO_TARGET_DIR/debug"

# Ignored by the run above because it needs schemathesis and the service binaries
# (which that run built); counted here.
log "contract test"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
set +e
CHAOS_BIN_DIR="$CARGO_TARGET_DIR/debug" cargo test --locked -p chaos --test contract -- --ignored 2>&1 | tee -a "$test_log"
contract_status=${PIPESTATUS[0]}
set -e
[ "$contract_status" -eq 0 ] || failed_steps+=("contract test")

passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$test_log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .*; ([0-9]+) failed' "$test_log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
# The contract test is listed as ignored by the workspace run and then run: not skipped.
ignored=$(grep -Eo '([0-9]+) ignored' "$test_log" | awk '{s+=$1} END {print (s > 0 ? s - 1 : 0)}')
rm -f "$test_log"
sweep_test_data

if [ ${#failed_steps[@]} -gt 0 ]; then
  log "failed: ${failed_steps[*]}"
  [ "$failed" -gt 0 ] || failed=${#failed_steps[@]}
fi
echo "$passed passed, $failed failed, $ignored skipped"
[ ${#failed_steps[@]} -eq 0 ]
