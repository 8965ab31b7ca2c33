#!/usr/bin/env bash
# Brings the whole platform up on this machine and runs the quickstart smoke:
# installs what is missing (PostgreSQL, Redis, build packages, the nisshi broker),
# starts what is not running, creates customer_db and order_db, builds the release
# binaries, starts payment-gateway (9090), customer-facing-service (8080) and
# order-management-service (8081) in the background, waits for their readiness, then
# runs scripts/validate-quickstart.sh. Running it again restarts the services with a
# fresh build. scripts/down.sh stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_build_packages
ensure_postgres
ensure_redis
ensure_broker
ensure_database customer_db
ensure_database order_db

use_shared_target_dir
log "building release binaries"
SQLX_OFFLINE=true cargo build --release --locked --bins --quiet

mkdir -p "$RUN_DIR"
db_url() { echo "postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$1"; }

start_service() { # name port env...
  local name=$1 port=$2
  shift 2
  local pid_file="$RUN_DIR/$name.pid"
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "restarting $name"
    kill "$(cat "$pid_file")" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.1; done
  fi
  if port_open "$port"; then
    die "port $port is in use by a process up.sh did not start; stop it first"
  fi
  log "starting $name on :$port (log: $RUN_DIR/$name.log)"
  env "$@" nohup "$CARGO_TARGET_DIR/release/$name" >>"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$pid_file"
}

start_service payment-gateway 9090 PAYMENT_GATEWAY_SERVER_PORT=9090
start_service customer-facing-service 8080 \
  CUSTOMER_SERVICE_SERVER_PORT=8080 \
  CUSTOMER_SERVICE_DATABASE_URL="$(db_url customer_db)" \
  CUSTOMER_SERVICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT"
start_service order-management-service 8081 \
  ORDER_SERVICE_SERVER_PORT=8081 \
  ORDER_SERVICE_DATABASE_URL="$(db_url order_db)" \
  ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT" \
  ORDER_SERVICE_PAYMENT_GATEWAY_URL=http://127.0.0.1:9090

wait_ready() { # name port
  local i
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$2/actuator/health/readiness" 2>/dev/null; then
      log "$1 ready"
      return 0
    fi
    kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null || die "$1 exited; see $RUN_DIR/$1.log: $(tail -n 1 "$RUN_DIR/$1.log")"
    sleep 0.1
  done
  die "$1 not ready after 60 s; see $RUN_DIR/$1.log"
}
command -v curl >/dev/null || apt_install curl
wait_ready payment-gateway 9090
wait_ready customer-facing-service 8080
wait_ready order-management-service 8081

"$ROOT/scripts/validate-quickstart.sh" --target local

cat <<MSG

The platform is up:
  customer-facing-service   http://127.0.0.1:8080   (health: /actuator/health, metrics: /actuator/prometheus)
  order-management-service  http://127.0.0.1:8081
  payment-gateway           http://127.0.0.1:9090
  broker                    127.0.0.1:$BROKER_PORT  (nisshi; data in $STATE_DIR)
  logs and pids             $RUN_DIR
Stop it with: scripts/down.sh
MSG
