#!/usr/bin/env bash
# Starts, stops or reports the local Kafka-protocol broker (nisshi) on 127.0.0.1:9092.
#   scripts/broker.sh start|stop|restart|status
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
case "${1:-status}" in
  start) ensure_broker; log "broker listening on 127.0.0.1:$BROKER_PORT" ;;
  stop) stop_broker; log "broker stopped" ;;
  restart) stop_broker; ensure_broker ;;
  status) if port_open "$BROKER_PORT"; then echo "broker: up on 127.0.0.1:$BROKER_PORT"; else echo "broker: down"; exit 1; fi ;;
  *) die "usage: scripts/broker.sh start|stop|restart|status" ;;
esac
