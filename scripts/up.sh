#!/usr/bin/env bash
# Brings the whole platform up on this machine and runs the quickstart smoke:
# installs what is missing (PostgreSQL, Redis, build packages, the nisshi broker),
# starts what is not running, creates customer_db, order_db and payment_gateway_db (the
# gateway's ledger), builds the release binaries, starts payment-gateway (9090),
# customer-facing-service (8080) and order-management-service (8081) in the
# background, waits for their readiness, starts Prometheus (127.0.0.1:9091) and
# Alertmanager (127.0.0.1:9093) watching them, then runs scripts/validate-quickstart.sh.
# Running it again restarts the services with a fresh build. scripts/down.sh stops what
# it started.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_build_packages
ensure_postgres
ensure_redis
ensure_broker
for db in "${PLATFORM_DATABASES[@]}"; do ensure_database "$db"; done

use_shared_target_dir
log "building release binaries"
SQLX_OFFLINE=true cargo build --release --locked --bins --quiet

ensure_local_secrets
start_platform release

wait_platform_ready
ensure_monitoring

# The demo manager local development seeds; the script takes no password otherwise.
OPSCTL_SMOKE_PASSWORD=manager123 "$ROOT/scripts/validate-quickstart.sh" --target local

cat <<MSG

The platform is up:
  customer-facing-service   http://127.0.0.1:8080   (health: /actuator/health, metrics: /actuator/prometheus)
  order-management-service  http://127.0.0.1:8081
  payment-gateway           http://127.0.0.1:9090
  broker                    127.0.0.1:$BROKER_PORT  (nisshi; data in $STATE_DIR)
  Prometheus                http://127.0.0.1:$PROMETHEUS_PORT/classic/targets   (rules: /classic/alerts)
  Alertmanager              http://127.0.0.1:$ALERTMANAGER_PORT
  logs and pids             $RUN_DIR
  opsctl                    $CARGO_TARGET_DIR/release/opsctl --help
  gateway tokens            $LOCAL_SECRETS (set -a; . $LOCAL_SECRETS; set +a)
Every service listens on 127.0.0.1 only, in the local development environment.
API documentation: /swagger-ui.html on each service.
Stop it with: scripts/down.sh

  Storefront:   http://localhost:8080/
  Back office:  http://localhost:8080/admin   (local login: manager / manager123)
MSG
