#!/usr/bin/env bash
# Brings the whole platform up on this machine and runs the quickstart smoke:
# installs what is missing (PostgreSQL, Redis, build packages, the nisshi broker),
# starts what is not running, creates customer_db, order_db and payment_gateway_db (the
# gateway's ledger), builds the release binaries, starts payment-gateway (9090),
# customer-facing-service (8080) and order-management-service (8081) in the
# background, waits for their readiness, starts Prometheus (127.0.0.1:9091) and
# Alertmanager (127.0.0.1:9093) watching them, then runs scripts/validate-quickstart.sh.
# Running it again restarts the services with a fresh build. scripts/down.sh stops what
# it started. An empty catalogue gets the demo shop (scripts/demo-catalogue.sh).
#
#   scripts/up.sh [--no-demo-catalogue]
#
#   --no-demo-catalogue  leave an empty catalogue empty (a non-empty one is never touched)
#   -h, --help           this text
set -euo pipefail
demo_catalogue=1
for arg in "$@"; do
  case "$arg" in
    --no-demo-catalogue) demo_catalogue= ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$arg' (see scripts/up.sh --help)" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

# Each step says when it starts, counted from the start of this script.
step() { log "+$((SECONDS / 60)) min $((SECONDS % 60)) s: $*"; }

step "packages, PostgreSQL, Redis"
ensure_build_packages
ensure_postgres
ensure_redis
step "the broker"
ensure_broker
for db in "${PLATFORM_DATABASES[@]}"; do ensure_database "$db"; done

use_shared_target_dir
step "building release binaries (a few minutes the first time)"
SQLX_OFFLINE=true cargo build --release --locked --bins --quiet
# opsctl where the runbook says it is: run/opsctl, the release build, not a fresh debug one.
mkdir -p "$RUN_DIR"
ln -sfn "$CARGO_TARGET_DIR/release/opsctl" "$RUN_DIR/opsctl"

step "starting the services"
ensure_local_secrets
start_platform release

wait_platform_ready
step "Prometheus and Alertmanager"
ensure_monitoring

# The demo manager local development seeds; the scripts take no password otherwise.
if [ -n "$demo_catalogue" ]; then
  step "the demo catalogue"
  OPSCTL_SMOKE_PASSWORD=manager123 "$ROOT/scripts/demo-catalogue.sh"
fi
step "the quickstart smoke"
OPSCTL_SMOKE_PASSWORD=manager123 "$ROOT/scripts/validate-quickstart.sh" --target local
step "done"

cat <<MSG

The platform is up:
  storefront                http://127.0.0.1:8080/
  back office               http://127.0.0.1:8080/admin   (local login: manager / manager123)
  customer-facing-service   http://127.0.0.1:8080   (health: /actuator/health, metrics: /actuator/prometheus)
  order-management-service  http://127.0.0.1:8081
  payment-gateway           http://127.0.0.1:9090
  Swagger UI                http://127.0.0.1:8080/swagger-ui.html
                            http://127.0.0.1:8081/swagger-ui.html
                            http://127.0.0.1:9090/swagger-ui.html
  Prometheus                http://127.0.0.1:$PROMETHEUS_PORT/classic/targets   (rules: /classic/alerts)
  Alertmanager              http://127.0.0.1:$ALERTMANAGER_PORT
  broker                    127.0.0.1:$BROKER_PORT  (nisshi; data in $STATE_DIR)
  logs and pids             $RUN_DIR
  opsctl                    $RUN_DIR/opsctl --help   (the release build)
  gateway tokens            $LOCAL_SECRETS (set -a; . $LOCAL_SECRETS; set +a)
Every service listens on 127.0.0.1 only, in the local development environment.
Stop it with: scripts/down.sh
MSG
