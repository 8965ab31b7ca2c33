#!/usr/bin/env bash
# Stops exactly what scripts/up.sh started: the three services (and any replicas),
# Prometheus and Alertmanager, and
# the broker, Redis and PostgreSQL only where the scripts started them (pass --keep-deps
# to leave those).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

# Replicas (<service>-n, started by scripts/bench.sh) go with their service.
for pid_file in "$RUN_DIR"/order-management-service*.pid "$RUN_DIR"/customer-facing-service*.pid \
  "$RUN_DIR"/payment-gateway.pid; do
  [ -f "$pid_file" ] || continue
  name=$(basename "$pid_file" .pid)
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
done

# Prometheus and Alertmanager watch the services: they go with them.
stop_monitoring

[ "${1:-}" = "--keep-deps" ] && exit 0
if [ -f "$STARTED_LIST" ]; then
  while read -r dep; do
    case "$dep" in
      broker) log "stopping the broker"; stop_broker ;;
      redis) log "stopping Redis"; redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true ;;
      postgres) log "stopping PostgreSQL"; as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main stop || true ;;
    esac
  done <"$STARTED_LIST"
  rm -f "$STARTED_LIST"
fi
