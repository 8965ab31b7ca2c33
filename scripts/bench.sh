#!/usr/bin/env bash
# The benchmark: brings the platform up in release mode, on the configuration up.sh
# starts (no benchmark-only tuning), and measures each scenario after a warm-up for a
# fixed time, against the physical limits of this machine measured in the same run.
# Prints one table and writes it to docs/performance.md.
#   - start-up: each service's time from exec to a ready readiness probe, and idle RSS;
#   - ceiling: the trivial handler (loadgen trivial-server) under the same load tool;
#   - catalogue browsing at 64 connections, as a ratio to the trivial handler;
#   - checkout (cart add + checkout) at 8 and 32 customers, as a ratio to pgbench running
#     the same SQL a checkout executes (scripts/bench/checkout.sql); like pgbench, with
#     the order service stopped, which then drains the backlog they leave (its rate as a
#     ratio to checkout's: the back must keep up with the front);
#   - completion keeps pace: checkout capacity with the order service running beside
#     it, then checkouts at 80 % of that for PACE_SECONDS (60): every order PAID, and how
#     long after the load the consumer lag and the unfinished orders are back to 0;
#   - end to end: checkout response to order PAID at 20 checkouts/s, and at half the
#     platform's capacity (checkout and order service together on the same cores);
#   - scale-out: checkout over two customer-service replicas, and a backlog drained by two
#     order-service replicas, as ratios to one replica's rates;
#   - what tracing costs: checkout at 8 customers with the order service running, with
#     every service exporting spans over OTLP/HTTP at 100 % and at 10 % sampling, as
#     ratios to the same run with tracing off (each on freshly restarted services);
#   - each service's peak RSS under all that load, and `opsctl reconcile` at the end.
# Durations: BENCH_SECONDS (default 15) measured after BENCH_WARMUP (default 5).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

SECONDS_MEASURED=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-5}
PACE_SECONDS=${PACE_SECONDS:-60}
apt_install postgresql-contrib jq curl
"$ROOT/scripts/up.sh" >/dev/null
use_shared_target_dir
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$RUN_DIR/$1.pid")/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$(cat "$RUN_DIR/$1.pid")/status"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A PostgreSQL with autovacuum off (this kind of machine's is) never clears the dead rows
# each phase leaves nor refreshes the planner's statistics, so every phase would run on
# the debris of the ones before it and the figures would drift with their order. There,
# each loaded phase starts from vacuumed, analysed databases instead, as autovacuum
# keeps them.
autovacuum=$(autovacuum_setting)
vacuum_platform() {
  [ "$autovacuum" != on ] || return 0
  local db
  for db in "${PLATFORM_DATABASES[@]}"; do psql -d "$db" -qc 'VACUUM (ANALYZE)'; done
}

log "start-up times"
declare -A startup idle_rss
for name in payment-gateway customer-facing-service order-management-service; do stop_service "$name"; done
# The benchmark's services log warnings only: a line per request would be measured too.
start_cfs() { # env...
  start_customer_service release CUSTOMER_SERVICE_LOG_LEVEL=warn "$@"
  wait_ready customer-facing-service 8080
}
start_oms() { # env...
  start_order_service release ORDER_SERVICE_LOG_LEVEL=warn "$@"
  wait_ready order-management-service 8081
}
t0=$(date +%s%N); start_gateway release; wait_ready payment-gateway 9090
startup[payment-gateway]=$(ms_since "$t0")
t0=$(date +%s%N); start_cfs; startup[customer-facing-service]=$(ms_since "$t0")
t0=$(date +%s%N); start_oms; startup[order-management-service]=$(ms_since "$t0")
OPSCTL_SMOKE_PASSWORD=manager123 "$ROOT/scripts/validate-quickstart.sh" --target local >/dev/null
sleep 2
for name in payment-gateway customer-facing-service order-management-service; do idle_rss[$name]=$(rss_kb "$name"); done

run() { # label args... -> JSON line
  log "$1"
  shift
  "$LOADGEN" "$@" --warmup "$WARMUP" --duration "$SECONDS_MEASURED"
}

trivial_port=$(free_port)
"$LOADGEN" trivial-server --port "$trivial_port" >/dev/null &
trivial_pid=$!
trap 'kill $trivial_pid 2>/dev/null || true' EXIT
wait_for_port "$trivial_port" 10 "the trivial server"
trivial=$(run "ceiling: trivial handler, 64 connections" trivial --base "http://127.0.0.1:$trivial_port" --connections 64)
kill $trivial_pid
browse=$(run "catalogue browsing, 64 connections" browse --base http://127.0.0.1:8080 --connections 64)
# pgbench runs the checkout's SQL with nothing else on the machine, so the checkout runs
# do too: the order service is stopped while they run (its consumer would otherwise pay
# for the same orders on the same two cores), and the orders wait for it in the broker.
oms_peak_before_checkout=$(hwm_kb order-management-service)
stop_service order-management-service
vacuum_platform
checkout8=$(run "checkout, 8 customers" checkout --base http://127.0.0.1:8080 --connections 8)
checkout32=$(run "checkout, 32 customers" checkout --base http://127.0.0.1:8080 --connections 32)

# The checkout runs left the order service a backlog; measure how fast it drains it,
# and let it finish before the end-to-end run, which would otherwise queue behind it.
vacuum_platform
log "starting order-management-service again"
start_oms
OPSCTL="$CARGO_TARGET_DIR/release/opsctl"
backlog() {
  "$OPSCTL" --json kafka lag | jq '[.partitions[].lag] | add // 0'
}
unfinished() { psql -d order_db -Atqc "SELECT count(*) FROM orders WHERE status IN ('PENDING', 'PROCESSING')"; }
# Orders still in the broker or not finished.
busy() { [ "$(backlog)" -gt 0 ] || [ "$(unfinished)" -gt 0 ]; }
wait_idle() { while busy; do sleep 0.5; done; }
# Waits until the running order service replicas have drained the backlog and finished
# every order; prints "<backlog at the start> <orders drained> <ms> <orders/s>".
measure_drain() {
  local start before at ms n
  start=$(date +%s%N)
  before=$(psql -d order_db -Atqc "SELECT count(*) FROM orders")
  at=$(backlog)
  wait_idle
  ms=$(ms_since "$start")
  n=$(( $(psql -d order_db -Atqc "SELECT count(*) FROM orders") - before ))
  echo "$at $n $ms $(awk -v n="$n" -v ms="$ms" 'BEGIN { printf "%d", (ms > 0 ? n * 1000 / ms : 0) }')"
}
log "order service draining the checkout backlog"
read -r backlog_start drained drain_ms drain_rate < <(measure_drain)

log "ceiling: pgbench with the checkout's SQL"
pgbench_db=customer_db
psql -d "$pgbench_db" -qf scripts/bench/checkout-setup.sql
pg_tps() { # clients
  pgbench -n -h "$PGHOST" -U "$PGUSER" -d "$pgbench_db" -f scripts/bench/checkout.sql -c "$1" -j 2 \
    -T "$SECONDS_MEASURED" 2>/dev/null | awk '/^tps/ {print int($3); exit}'
}
pg8=$(pg_tps 8)
pg32=$(pg_tps 32)
psql -d "$pgbench_db" -qf scripts/bench/checkout-teardown.sql

# Scale-out: a second replica of each service beside the first, on the same databases,
# broker and two cores. Checkout at 8 customers spread over both customer-service
# replicas (the order service stopped, as above); then both order-service replicas
# drain the backlog that leaves. The three partitions spread over the two consumers
# (each replica's orders_created_total says how many it took), no order is processed
# twice (opsctl reconcile at the end), and the rates are compared with one replica's.
# Two load generators of 4 connections each, one per port given: the same load against
# one replica and against two, back to back, so only the second replica differs.
checkout_two_loaders() { # port port -> summed JSON
  local dir port pids=()
  dir=$(mktemp -d)
  for port in "$@"; do
    "$LOADGEN" checkout --base "http://127.0.0.1:$port" --connections 4 --warmup "$WARMUP" \
      --duration "$SECONDS_MEASURED" >"$dir/${#pids[@]}.json" &
    pids+=($!)
  done
  # The two load generators only: a bare `wait` would also wait for the services.
  wait "${pids[@]}"
  jq -s '{per_second: (map(.per_second) | add), p50_ms: (map(.p50_ms) | max),
    p99_ms: (map(.p99_ms) | max), p999_ms: (map(.p999_ms) | max), errors: (map(.errors) | add)}' \
    "$dir"/*.json
  rm -rf "$dir"
}
vacuum_platform
log "scale-out: checkout, 8 customers on one customer-service replica (two load generators)"
stop_service order-management-service
checkout_one=$(checkout_two_loaders 8080 8080)
log "scale-out: checkout, 8 customers over two customer-service replicas"
start_customer_replica release 2 CUSTOMER_SERVICE_LOG_LEVEL=warn
wait_ready customer-facing-service-2 8082
checkout_pair=$(checkout_two_loaders 8080 8082)
stop_service customer-facing-service-2
log "scale-out: two order-service replicas draining the backlog"
start_oms
start_order_replica release 2 ORDER_SERVICE_LOG_LEVEL=warn
wait_ready order-management-service-2 8083
taken() { # port: orders this replica created since it started
  curl -fsS "http://127.0.0.1:$1/actuator/prometheus" | awk '/^orders_created_total/ {print int($2)}'
}
read -r backlog2_start drained2 drain2_ms drain2_rate < <(measure_drain)
taken1=$(taken 8081)
taken2=$(taken 8083)
stop_service order-management-service-2

declare -A peak_rss=([payment-gateway]=0 [customer-facing-service]=0 [order-management-service]=0)
note_peaks() {
  local name kb
  for name in payment-gateway customer-facing-service order-management-service; do
    kb=$(hwm_kb "$name")
    if [ "$kb" -gt "${peak_rss[$name]}" ]; then peak_rss[$name]=$kb; fi
  done
}
note_peaks
if [ "$oms_peak_before_checkout" -gt "${peak_rss[order-management-service]}" ]; then
  peak_rss[order-management-service]=$oms_peak_before_checkout
fi

# Completion keeps pace: the checkout capacity with the order service running beside it
# on the same cores, then an open loop at 80 % of it. Every order must end PAID, and the
# back must be idle again (no lag, nothing unfinished) soon after the load stops.
vacuum_platform
beside=$(run "checkout, 8 customers, order service running" checkout --base http://127.0.0.1:8080 --connections 8)
wait_idle
pace_rate=$(jq -r '.per_second * 0.8 * 10 | floor / 10' <<<"$beside")
pace_from=$(psql -d order_db -Atqc "SELECT now() AT TIME ZONE 'UTC'")
orders_before=$(psql -d order_db -Atqc "SELECT count(*) FROM orders")
log "completion: checkouts at $pace_rate/s for $PACE_SECONDS s, order service running"
pace=$("$LOADGEN" pace --rate "$pace_rate" --warmup 0 --duration "$PACE_SECONDS")
pace_end=$(date +%s%N)
while busy; do
  [ "$(ms_since "$pace_end")" -lt 120000 ] || break
  sleep 0.1
done
catch_up_ms=$(ms_since "$pace_end")
pace_orders=$(( $(psql -d order_db -Atqc "SELECT count(*) FROM orders") - orders_before ))
pace_paid=$(psql -d order_db -Atqc "SELECT count(*) FROM orders WHERE created_at >= '$pace_from' AND status = 'PAID'")
note_peaks

# Latency, on the default configuration: at 20 checkouts/s, and at half the platform's
# checkout capacity. Each order costs the customer service a checkout and the order
# service a payment on the same two cores, so together they take 1/checkout + 1/drain
# seconds of the machine per order. The load tool learns that an order is PAID from one
# read of order_db every 5 ms (the orders it waits for, by number), not from each order
# asking the order service every 5 ms, which cost thousands of lookups a second at this
# rate on the cores being measured.
rate=$(jq -r --argjson drain "$drain_rate" 'if .per_second > 0 and $drain > 0 then 0.5 / (1 / .per_second + 1 / $drain) else 1 end | if . < 1 then 1 else (. * 10 | floor / 10) end' <<<"$checkout8")
OPSCTL_SMOKE_PASSWORD=manager123 "$ROOT/scripts/validate-quickstart.sh" --target local --timeout 120 >/dev/null
vacuum_platform
e2e20=$(run "end to end at 20 checkouts/s" e2e --base http://127.0.0.1:8080 --order-db "$(db_url order_db)" --rate 20)
e2e=$(run "end to end at $rate checkouts/s" e2e --base http://127.0.0.1:8080 --order-db "$(db_url order_db)" --rate "$rate")
note_peaks

# What tracing costs. The spans go to an OTLP/HTTP sink on this machine that reads and
# drops each export (a collector's work is not the services' cost, though the sink's
# CPU is taken from the same two cores, as a node-local agent's would be). Each variant
# restarts the three services with its OTEL_* settings and measures checkout with the
# order service running, so every span of the checkout's trace is made and exported.
otlp_port=$(free_port)
python3 - "$otlp_port" <<'PY' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
otlp_pid=$!
trap 'kill $trivial_pid $otlp_pid 2>/dev/null || true' EXIT
wait_for_port "$otlp_port" 10 "the OTLP sink"
restart_platform() { # env...
  local name
  for name in order-management-service customer-facing-service payment-gateway; do stop_service "$name"; done
  start_gateway release "$@"
  wait_ready payment-gateway 9090
  start_cfs "$@"
  start_oms "$@"
  wait_idle
  vacuum_platform
}
traced() { # label ratio -> JSON
  restart_platform OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_port" \
    OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG="$2"
  run "checkout, 8 customers, order service running, $1" checkout --base http://127.0.0.1:8080 --connections 8
}
restart_platform
untraced=$(run "checkout, 8 customers, order service running, tracing off" checkout --base http://127.0.0.1:8080 --connections 8)
traced100=$(traced "traces exported at 100 %" 1.0)
traced10=$(traced "traces exported at 10 %" 0.1)
kill $otlp_pid 2>/dev/null || true
restart_platform
note_peaks
wait_idle
if PAYMENT_GATEWAY_ADMIN_TOKEN="$(local_secret PAYMENT_GATEWAY_ADMIN_TOKEN)" "$OPSCTL" reconcile >/dev/null 2>&1; then books=clean; else books="NOT CLEAN (opsctl reconcile)"; fi

f() { jq -r "$2" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a" }'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
table=$(cat <<TABLE
| measurement | result | p50 | p99 | p99.9 | limit | ratio | target |
|---|---|---|---|---|---|---|---|
| trivial handler, 64 conns (ceiling) | $(f "$trivial" '.per_second|floor') req/s | $(f "$trivial" '.p50_ms*100|round/100') ms | $(f "$trivial" '.p99_ms*100|round/100') ms | $(f "$trivial" '.p999_ms*100|round/100') ms | | | |
| catalogue browse, 64 conns | $(f "$browse" '.per_second|floor') req/s | $(f "$browse" '.p50_ms*100|round/100') ms | $(f "$browse" '.p99_ms*100|round/100') ms | $(f "$browse" '.p999_ms*100|round/100') ms | $(f "$trivial" '.per_second|floor') req/s trivial | $(ratio "$(f "$browse" .per_second)" "$(f "$trivial" .per_second)") | ≥ 50 %, p99 < 5 ms |
| checkout, 8 customers (order service stopped) | $(f "$checkout8" '.per_second|floor') /s | $(f "$checkout8" '.p50_ms*100|round/100') ms | $(f "$checkout8" '.p99_ms*100|round/100') ms | $(f "$checkout8" '.p999_ms*100|round/100') ms | $pg8 tps pgbench | $(ratio "$(f "$checkout8" .per_second)" "$pg8") | ≥ 90 % |
| checkout, 32 customers (order service stopped) | $(f "$checkout32" '.per_second|floor') /s | $(f "$checkout32" '.p50_ms*100|round/100') ms | $(f "$checkout32" '.p99_ms*100|round/100') ms | $(f "$checkout32" '.p999_ms*100|round/100') ms | $pg32 tps pgbench | $(ratio "$(f "$checkout32" .per_second)" "$pg32") | ≥ 70 % |
| order service draining a backlog of $backlog_start records | $drained orders in $((drain_ms / 1000)) s = $drain_rate orders/s | | | | | | |
| order service draining, as a ratio to checkout at 8 customers | | | | | $(f "$checkout8" '.per_second|floor') /s checkout | $(ratio "$drain_rate" "$(f "$checkout8" .per_second)") | ≥ 100 % |
| checkout, 8 customers over two customer-service replicas (order service stopped) | $(f "$checkout_pair" '.per_second|floor') /s, $(f "$checkout_pair" '.errors') errors | $(f "$checkout_pair" '.p50_ms*100|round/100') ms | $(f "$checkout_pair" '.p99_ms*100|round/100') ms | $(f "$checkout_pair" '.p999_ms*100|round/100') ms | $(f "$checkout_one" '.per_second|floor') /s one replica, same two load generators just before | $(ratio "$(f "$checkout_pair" .per_second)" "$(f "$checkout_one" .per_second)") | ≥ 100 % |
| two order-service replicas draining a backlog of $backlog2_start records | $drained2 orders in $((drain2_ms / 1000)) s = $drain2_rate orders/s; taken $taken1 + $taken2 | | | | $drain_rate orders/s one replica | $(ratio "$drain2_rate" "$drain_rate") | ≥ 100 %, both take some |
| checkout, 8 customers, order service running (capacity beside it) | $(f "$beside" '.per_second|floor') /s | $(f "$beside" '.p50_ms*100|round/100') ms | $(f "$beside" '.p99_ms*100|round/100') ms | $(f "$beside" '.p999_ms*100|round/100') ms | | | |
| checkouts at $pace_rate/s (80 % of that) for $PACE_SECONDS s, order service running | $pace_orders orders, $pace_paid PAID, $(f "$pace" '.errors') errors; lag and unfinished back to 0 $((catch_up_ms / 1000)).$(( (catch_up_ms % 1000) / 100 )) s after the load | $(f "$pace" '.p50_ms*100|round/100') ms | $(f "$pace" '.p99_ms*100|round/100') ms | $(f "$pace" '.p999_ms*100|round/100') ms | | | all PAID, back to 0 within 5 s |
| checkout, 8 customers, order service running, tracing off | $(f "$untraced" '.per_second|floor') /s | $(f "$untraced" '.p50_ms*100|round/100') ms | $(f "$untraced" '.p99_ms*100|round/100') ms | $(f "$untraced" '.p999_ms*100|round/100') ms | | | |
| the same, traces exported at 100 % sampling | $(f "$traced100" '.per_second|floor') /s | $(f "$traced100" '.p50_ms*100|round/100') ms | $(f "$traced100" '.p99_ms*100|round/100') ms | $(f "$traced100" '.p999_ms*100|round/100') ms | $(f "$untraced" '.per_second|floor') /s tracing off | $(ratio "$(f "$traced100" .per_second)" "$(f "$untraced" .per_second)") | |
| the same, traces exported at 10 % sampling | $(f "$traced10" '.per_second|floor') /s | $(f "$traced10" '.p50_ms*100|round/100') ms | $(f "$traced10" '.p99_ms*100|round/100') ms | $(f "$traced10" '.p999_ms*100|round/100') ms | $(f "$untraced" '.per_second|floor') /s tracing off | $(ratio "$(f "$traced10" .per_second)" "$(f "$untraced" .per_second)") | ≥ 95 % |
| checkout → PAID at 20/s | $(f "$e2e20" '.operations') orders, $(f "$e2e20" '.errors') errors | $(f "$e2e20" '.p50_ms*100|round/100') ms | $(f "$e2e20" '.p99_ms*100|round/100') ms | $(f "$e2e20" '.p999_ms*100|round/100') ms | | | p50 < 40 ms |
| checkout → PAID at $rate/s (half the platform's capacity) | $(f "$e2e" '.operations') orders, $(f "$e2e" '.errors') errors | $(f "$e2e" '.p50_ms*100|round/100') ms | $(f "$e2e" '.p99_ms*100|round/100') ms | $(f "$e2e" '.p999_ms*100|round/100') ms | | | p99 < 100 ms, 0 errors |
| books after the run | opsctl reconcile: $books | | | | | | clean |
| customer-facing-service | ready in ${startup[customer-facing-service]} ms | idle $((idle_rss[customer-facing-service] / 1024)) MB | peak $((peak_rss[customer-facing-service] / 1024)) MB | | | | < 1 s, < 50 MB |
| order-management-service | ready in ${startup[order-management-service]} ms | idle $((idle_rss[order-management-service] / 1024)) MB | peak $((peak_rss[order-management-service] / 1024)) MB | | | | < 1 s, < 50 MB |
| payment-gateway | ready in ${startup[payment-gateway]} ms | idle $((idle_rss[payment-gateway] / 1024)) MB | peak $((peak_rss[payment-gateway] / 1024)) MB | | | | < 1 s, < 50 MB |
TABLE
)
echo "$table"
{
  echo "# Performance"
  echo
  echo "Measured by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) on $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB;"
  echo "each scenario ${WARMUP} s warm-up then ${SECONDS_MEASURED} s measured, load generator and platform on the same machine;"
  echo "PostgreSQL autovacuum $autovacuum$([ "$autovacuum" = on ] || echo ', so the benchmark vacuums the platform'"'"'s databases before each loaded phase')."
  echo
  echo "$table"
  echo
  [ -f docs/performance-notes.md ] && cat docs/performance-notes.md
} >docs/performance.md
log "written to docs/performance.md"
