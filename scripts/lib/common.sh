# Shared by up.sh, down.sh, test.sh and broker.sh: finds, installs and starts what the
# platform runs on (PostgreSQL, Redis, the nisshi broker), reusing whatever is already
# there. Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Dependencies outlive one checkout: the broker's data and logs live here.
STATE_DIR=${ECOM_STATE_DIR:-/var/tmp/ecommerce-platform}
# What up.sh starts (services, logs, pids) lives here.
RUN_DIR=${ECOM_RUN_DIR:-$ROOT/run}
NISSHI_VERSION=0.8.1
# Crates the broker's build compiles (nisshi 0.8.1 with libsql only: `cargo tree
# --no-default-features --features libsql -e normal,build` in its source), for the
# progress line.
NISSHI_CRATES=458
BROKER_PORT=${BROKER_PORT:-9092}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-postgres}
export PGHOST PGPORT PGUSER

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  die "$3 did not open port $1 within $2 s"
}

apt_updated=
apt_install() { # packages...
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Build needs: rdkafka's bundled librdkafka is built with cmake and links libcurl, and
# the system OpenSSL for Kafka over SSL/SASL.
ensure_build_packages() {
  apt_install cmake libcurl4-openssl-dev libssl-dev pkg-config build-essential
}

STARTED_LIST=$STATE_DIR/started-by-scripts
record_started() { mkdir -p "$STATE_DIR"; grep -qx "$1" "$STARTED_LIST" 2>/dev/null || echo "$1" >>"$STARTED_LIST"; }

ensure_postgres() {
  if ! command -v psql >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if ! port_open "$PGPORT"; then apt_install postgresql postgresql-contrib; fi
  fi
  if ! port_open "$PGPORT"; then
    log "starting PostgreSQL"
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    record_started postgres
    wait_for_port "$PGPORT" 30 PostgreSQL
  fi
  if ! psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks for a password on TCP: give postgres the one we use.
    log "setting the postgres user's password for local TCP connections"
    as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD '$PGPASSWORD'" >/dev/null
    psql -d postgres -Atqc 'SELECT 1' >/dev/null || die "cannot connect to PostgreSQL at $PGHOST:$PGPORT as $PGUSER"
  fi
  ensure_postgres_ssl
  if [ "$(autovacuum_setting)" != on ]; then
    log "warning: PostgreSQL runs with autovacuum off: the platform's tables keep their dead rows and stale statistics and slow down with their history; turn it on, or VACUUM (ANALYZE) its databases now and then"
  fi
}

# The platform connects to PostgreSQL over TLS where DATABASE_URL says so, and its tests
# check that against this server (verify-full to localhost, refused for 127.0.0.1): turn
# TLS on when the server runs without it, with a self-signed certificate for the name
# localhost alone. (Debian's snakeoil certificate names the machine's hostname, which
# the server does not listen on.)
ensure_postgres_ssl() {
  [ "$(psql -d postgres -Atqc 'SHOW ssl')" = on ] && return 0
  local dir cert key
  dir=$(psql -d postgres -Atqc 'SHOW config_file')
  dir=$(dirname "$dir")
  cert=$dir/server-localhost.crt key=$dir/server-localhost.key
  if ! as_root test -s "$key"; then
    log "making a self-signed TLS certificate for PostgreSQL ($cert)"
    as_root openssl req -x509 -nodes -newkey rsa:2048 -days 3650 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
      -keyout "$key" -out "$cert" 2>/dev/null
    as_root chown postgres:postgres "$cert" "$key"
    as_root chmod 600 "$key"
    as_root chmod 644 "$cert"
  fi
  log "turning on TLS in PostgreSQL"
  psql -d postgres -qc "ALTER SYSTEM SET ssl_cert_file = '$cert'" \
    -c "ALTER SYSTEM SET ssl_key_file = '$key'" -c "ALTER SYSTEM SET ssl = on" \
    -c 'SELECT pg_reload_conf()' >/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(psql -d postgres -Atqc 'SHOW ssl')" = on ] && return 0
    sleep 0.1
  done
  die "PostgreSQL did not turn TLS on: see its log (ssl_cert_file $cert, ssl_key_file $key)"
}

# PostgreSQL's autovacuum setting: on or off.
autovacuum_setting() { psql -d postgres -Atqc 'SHOW autovacuum'; }

# The platform's databases: one per service.
PLATFORM_DATABASES=(customer_db order_db payment_gateway_db)

ensure_database() { # name
  if [ "$(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$1'")" != 1 ]; then
    log "creating database $1"
    psql -d postgres -qc "CREATE DATABASE \"$1\"" >/dev/null
  fi
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis"
  mkdir -p "$STATE_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$STATE_DIR" --logfile "$STATE_DIR/redis.log" --pidfile "$STATE_DIR/redis.pid"
  record_started redis
  wait_for_port 6379 10 Redis
}

nisshi_bin() {
  command -v nisshi 2>/dev/null || { [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi" ] && echo "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi"; }
}

ensure_nisshi_installed() {
  local bin
  bin=$(nisshi_bin) && [ -n "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$NISSHI_VERSION" && return 0
  log "building the nisshi $NISSHI_VERSION broker (once per machine; 12 to 16 minutes on 2 cores; log: $STATE_DIR/nisshi-build.log)"
  ensure_build_packages
  mkdir -p "$STATE_DIR"
  # Only the storage engine the platform runs it with (SQLite, through libsql): the
  # default features add the S3 and PostgreSQL engines, and double the build. Its
  # progress is one line every 25 crates, with a linear estimate of what is left (its
  # last few crates each take a minute or more on one core, so the end comes later).
  local total=$NISSHI_CRATES start=$SECONDS
  # The build's own failure is written into the log, so it is seen whatever pipefail says.
  { cargo install "nisshi@$NISSHI_VERSION" --locked --ignore-rust-version --color never \
    --no-default-features --features libsql 2>&1 || echo "nisshi build failed: exit $?"; } |
    tee "$STATE_DIR/nisshi-build.log" |
    { n=0; while IFS= read -r line; do
      case "$line" in *Compiling*)
        n=$((n + 1))
        if [ $((n % 25)) -eq 0 ]; then
          elapsed=$((SECONDS - start))
          log "broker build: $n of about $total crates in $((elapsed / 60)) min $((elapsed % 60)) s, about $(((elapsed * (total - n) / n + 59) / 60)) min left"
        fi ;;
      esac
    done; }
  if grep -q "^nisshi build failed" "$STATE_DIR/nisshi-build.log"; then
    die "the broker did not build; see $STATE_DIR/nisshi-build.log"
  fi
  log "broker built in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
}

# Installs schemathesis (pinned) into $STATE_DIR/venv once, and points SCHEMATHESIS at
# it: the contract test (scripts/test.sh) and the fuzz suite (scripts/chaos.sh) run it.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  if ! "$STATE_DIR/venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $STATE_DIR/venv"
    command -v python3 >/dev/null || apt_install python3
    mkdir -p "$STATE_DIR"
    python3 -m venv "$STATE_DIR/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$STATE_DIR/venv"; }
    "$STATE_DIR/venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS="$STATE_DIR/venv/bin/schemathesis"
}

# cargo-deny, pinned: deny.toml's keys follow its version. scripts/check-dependencies.sh
# runs it.
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION" && return 0
  log "installing cargo-deny $CARGO_DENY_VERSION (once per machine; about 6 minutes on 2 cores)"
  # Built in a temporary directory of its own, not in the workspace's target directory.
  env -u CARGO_TARGET_DIR cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
}

# The RustSec advisory database cargo deny checks against: the machine's snapshot when
# there is one (ADVISORY_SNAPSHOT, by default ../shared/advisory-db beside the clone),
# read offline; otherwise none is prepared and cargo deny fetches the live one.
# cargo-deny reads a database only as a git repository in a directory named after its
# URL, so the snapshot is copied into one, committed with the snapshot's own date (which
# cargo-deny's staleness limit, deny.toml's maximum-db-staleness, is measured from).
# Sets ADVISORY_OFFLINE=1 and exports ECOM_ADVISORY_DBS (deny.toml's db-path) when it
# prepared the snapshot.
ADVISORY_SNAPSHOT=${ADVISORY_SNAPSHOT:-$ROOT/../shared/advisory-db}
ADVISORY_OFFLINE=
ensure_advisory_db() {
  [ -d "$ADVISORY_SNAPSHOT/crates" ] || return 0
  local root=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs-snapshot
  # cargo-deny's directory for https://github.com/RustSec/advisory-db: the URL's last
  # path segment and the XxHash64 of the lower-cased URL (its url_to_db_path).
  local dest=$root/advisory-db-3157b0e258782691
  local id day
  id=$(cat "$ADVISORY_SNAPSHOT/SNAPSHOT" 2>/dev/null || date -r "$ADVISORY_SNAPSHOT" +%F)
  if [ "$(cat "$dest/.git/ecom-snapshot" 2>/dev/null)" != "$id" ]; then
    log "preparing the advisory database snapshot $id for cargo deny"
    rm -rf "$dest"
    mkdir -p "$root"
    cp -r "$ADVISORY_SNAPSHOT" "$dest"
    chmod -R u+w "$dest"
    if [ ! -d "$dest/.git" ]; then
      # The snapshot's date: SNAPSHOT's second field (<commit> <YYYY-MM-DD> <repo>).
      day=$(awk '{print $2}' "$dest/SNAPSHOT" 2>/dev/null | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' ||
        date -r "$ADVISORY_SNAPSHOT" +%F)
      git -C "$dest" init -q
      git -C "$dest" add -A
      GIT_AUTHOR_DATE="${day}T00:00:00Z" GIT_COMMITTER_DATE="${day}T00:00:00Z" \
        git -C "$dest" -c user.name=snapshot -c user.email=snapshot@localhost -c commit.gpgsign=false \
        commit -qm "RustSec advisory database snapshot $id"
      touch -d "${day}T00:00:00Z" "$dest/.git/HEAD"
    fi
    echo "$id" >"$dest/.git/ecom-snapshot"
  fi
  export ECOM_ADVISORY_DBS=advisory-dbs-snapshot
  ADVISORY_OFFLINE=1
}

# Starts the broker on 127.0.0.1:$BROKER_PORT with durable SQLite storage, unless one
# already listens there.
ensure_broker() {
  port_open "$BROKER_PORT" && return 0
  ensure_nisshi_installed
  mkdir -p "$STATE_DIR"
  log "starting the nisshi broker on 127.0.0.1:$BROKER_PORT"
  # nisshi reads a sqlite:// path relative to its working directory.
  local bin
  bin=$(nisshi_bin)
  (cd "$STATE_DIR" && exec nohup "$bin" broker \
    --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --storage-engine "sqlite://broker.db" \
    --group-initial-rebalance-delay 100ms \
    >>"$STATE_DIR/broker.log" 2>&1) &
  echo $! >"$STATE_DIR/broker.pid"
  record_started broker
  wait_for_port "$BROKER_PORT" 30 "the broker"
}

stop_broker() {
  local pid
  pid=$(cat "$STATE_DIR/broker.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE_DIR/broker.pid"
}

# The monitoring stack of the local platform: Prometheus on 127.0.0.1:$PROMETHEUS_PORT
# (9090 is the gateway's) and Alertmanager on 127.0.0.1:$ALERTMANAGER_PORT, from Debian's
# packages. Prometheus's configuration is generated from compose's
# (infrastructure/prometheus/prometheus.yml) with only the addresses changed, and loads
# the same rules file; Alertmanager runs infrastructure/alertmanager/alertmanager.yml as
# it is. Data and logs live in $STATE_DIR/monitoring.
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9091}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
MONITORING_DIR=$STATE_DIR/monitoring
local_prometheus_config() { # compose's prometheus.yml on stdin, the local one on stdout
  sed -e 's/"customer-facing-service:8080"/"127.0.0.1:8080"/' \
    -e 's/"order-management-service:8081"/"127.0.0.1:8081"/' \
    -e 's/"payment-gateway:9090"/"127.0.0.1:9090"/' \
    -e "s|\"alertmanager:9093\"|\"127.0.0.1:$ALERTMANAGER_PORT\"|" \
    -e "s|^  - alerts.yml$|  - $ROOT/infrastructure/prometheus/alerts.yml|"
}
ensure_monitoring() {
  apt_install prometheus prometheus-alertmanager
  mkdir -p "$MONITORING_DIR"
  local_prometheus_config <"$ROOT/infrastructure/prometheus/prometheus.yml" >"$MONITORING_DIR/prometheus.yml"
  promtool check config "$MONITORING_DIR/prometheus.yml" >/dev/null ||
    die "the generated $MONITORING_DIR/prometheus.yml does not load"
  if ! port_open "$ALERTMANAGER_PORT"; then
    log "starting Alertmanager on 127.0.0.1:$ALERTMANAGER_PORT"
    nohup prometheus-alertmanager \
      --config.file="$ROOT/infrastructure/alertmanager/alertmanager.yml" \
      --storage.path="$MONITORING_DIR/alertmanager" \
      --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
      --cluster.listen-address= \
      >>"$MONITORING_DIR/alertmanager.log" 2>&1 &
    echo $! >"$MONITORING_DIR/alertmanager.pid"
    wait_for_port "$ALERTMANAGER_PORT" 30 "Alertmanager"
  fi
  if port_open "$PROMETHEUS_PORT"; then
    # Already running: SIGHUP makes it read the regenerated configuration and the rules
    # (no lifecycle endpoint: nobody stops it over HTTP).
    local pid
    pid=$(cat "$MONITORING_DIR/prometheus.pid" 2>/dev/null) && kill -HUP "$pid" 2>/dev/null ||
      log "warning: a Prometheus these scripts did not start holds :$PROMETHEUS_PORT; it keeps its configuration"
  else
    log "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT"
    nohup prometheus \
      --config.file="$MONITORING_DIR/prometheus.yml" \
      --storage.tsdb.path="$MONITORING_DIR/prometheus" \
      --storage.tsdb.retention.time=15d \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
      >>"$MONITORING_DIR/prometheus.log" 2>&1 &
    echo $! >"$MONITORING_DIR/prometheus.pid"
    wait_for_port "$PROMETHEUS_PORT" 30 "Prometheus"
  fi
}
stop_monitoring() {
  local name pid
  for name in prometheus alertmanager; do
    pid=$(cat "$MONITORING_DIR/$name.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$MONITORING_DIR/$name.pid"
  done
}

# A target dir outside the clone, reused across clones and CI runs when it exists.
use_shared_target_dir() {
  if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    local dir=/var/cache/ecom/target
    mkdir -p "$dir" 2>/dev/null || dir=$HOME/.cache/ecom/target
    mkdir -p "$dir"
    export CARGO_TARGET_DIR=$dir
  fi
}

db_url() { echo "postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$1"; }

# Starts a service binary in the background, logging to $RUN_DIR/<name>.log, with its pid
# in $RUN_DIR/<name>.pid; a copy started earlier by these scripts is stopped first.
start_service() { # profile name port env...
  local profile=$1 name=$2 port=$3
  shift 3
  start_instance "$profile" "$name" "$name" "$port" "$@"
}

# Starts one instance of a service binary under its own name (its log and pid file), so
# that a second replica can run beside the first: start_instance release
# order-management-service order-management-service-2 8083 ORDER_SERVICE_SERVER_PORT=8083
start_instance() { # profile binary instance port env...
  local profile=$1 binary=$2 name=$3 port=$4
  shift 4
  mkdir -p "$RUN_DIR"
  local pid_file="$RUN_DIR/$name.pid"
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "restarting $name"
    stop_service "$name"
  fi
  port_open "$port" && die "port $port is in use by a process these scripts did not start; stop it first"
  log "starting $name on :$port (log: $RUN_DIR/$name.log)"
  # Two glibc heap arenas instead of one per thread, and large blocks returned when
  # freed: see the Dockerfile.
  env MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 "$@" nohup "$CARGO_TARGET_DIR/$profile/$binary" >>"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$pid_file"
}

# The local stack's secrets: the gateway's admin token (its fault knobs and ledger reads)
# and its service token (which the order service sends), made once per machine with 32
# random bytes each and kept, readable by root only, in $LOCAL_SECRETS. Nothing local
# runs on a secret a stranger could know. `set -a; . $LOCAL_SECRETS; set +a` gives a shell
# the admin token for the runbook's curl lines and opsctl reconcile.
LOCAL_SECRETS=$STATE_DIR/local-secrets.env
ensure_local_secrets() {
  [ -s "$LOCAL_SECRETS" ] && return 0
  mkdir -p "$STATE_DIR"
  (
    umask 077
    {
      echo "# Made by scripts/lib/common.sh for the local stack; not for shared environments."
      echo "PAYMENT_GATEWAY_ADMIN_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "PAYMENT_GATEWAY_SERVICE_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$LOCAL_SECRETS"
  )
  log "made the local stack's gateway tokens in $LOCAL_SECRETS"
}
local_secret() { ensure_local_secrets; sed -n "s/^$1=//p" "$LOCAL_SECRETS"; } # name

# Each service on its standard port, against the local dependencies, in the local
# development environment and listening on loopback only; extra variables (env...) come
# last and so override these.
start_gateway() { # profile env...
  local profile=$1
  shift
  start_service "$profile" payment-gateway 9090 \
    ENVIRONMENT=local \
    PAYMENT_GATEWAY_SERVER_PORT=9090 \
    PAYMENT_GATEWAY_ADMIN_TOKEN="$(local_secret PAYMENT_GATEWAY_ADMIN_TOKEN)" \
    PAYMENT_GATEWAY_SERVICE_TOKEN="$(local_secret PAYMENT_GATEWAY_SERVICE_TOKEN)" \
    PAYMENT_GATEWAY_DATABASE_URL="$(db_url payment_gateway_db)" "$@"
}
start_customer_service() { # profile env...
  start_customer_replica "$1" 1 "${@:2}"
}
start_order_service() { # profile env...
  start_order_replica "$1" 1 "${@:2}"
}
# Replica n of a service, beside the others on the same databases and broker: the first
# is the service on its standard port; replica n listens 2(n-1) ports above it (the
# customer service's second replica on 8082, the order service's on 8083) and is named
# <service>-n in $RUN_DIR.
replica_port() { echo $(($1 + 2 * ($2 - 1))); } # base n
replica_name() { if [ "$2" -eq 1 ]; then echo "$1"; else echo "$1-$2"; fi; } # service n
start_customer_replica() { # profile n env...
  local profile=$1 port
  port=$(replica_port 8080 "$2")
  start_instance "$profile" customer-facing-service "$(replica_name customer-facing-service "$2")" "$port" \
    ENVIRONMENT=local \
    CUSTOMER_SERVICE_SERVER_PORT="$port" \
    CUSTOMER_SERVICE_DATABASE_URL="$(db_url customer_db)" \
    CUSTOMER_SERVICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT" "${@:3}"
}
start_order_replica() { # profile n env...
  local profile=$1 port
  port=$(replica_port 8081 "$2")
  start_instance "$profile" order-management-service "$(replica_name order-management-service "$2")" "$port" \
    ENVIRONMENT=local \
    ORDER_SERVICE_SERVER_PORT="$port" \
    ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN="$(local_secret PAYMENT_GATEWAY_SERVICE_TOKEN)" \
    ORDER_SERVICE_DATABASE_URL="$(db_url order_db)" \
    ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT" \
    ORDER_SERVICE_PAYMENT_GATEWAY_URL=http://127.0.0.1:9090 "${@:3}"
}
start_platform() { # profile
  start_gateway "$1"
  start_customer_service "$1"
  start_order_service "$1"
}

# Stops a service these scripts started and waits (up to 10 s) for it to exit.
stop_service() { # name
  local pid_file="$RUN_DIR/$1.pid" pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pid_file"
}

wait_ready() { # name port [seconds]
  local i limit=$((${3:-60} * 100))
  for ((i = 0; i < limit; i++)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$2/actuator/health/readiness" 2>/dev/null; then
      return 0
    fi
    kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null || die "$1 exited; see $RUN_DIR/$1.log: $(tail -n 1 "$RUN_DIR/$1.log")"
    sleep 0.01
  done
  die "$1 not ready after ${3:-60} s; see $RUN_DIR/$1.log"
}

wait_platform_ready() {
  command -v curl >/dev/null || apt_install curl
  wait_ready payment-gateway 9090 && log "payment-gateway ready"
  wait_ready customer-facing-service 8080 && log "customer-facing-service ready"
  wait_ready order-management-service 8081 && log "order-management-service ready"
}

# Drops the databases and deletes the topics tests make (<prefix>_<32 hex>), left by a run
# that was cut short; a database still in use by a test running elsewhere refuses to be
# dropped, and is left alone.
sweep_test_data() {
  psql -d postgres -Atqc "SELECT datname FROM pg_database WHERE datname ~ '^(platform|cfs|oms|pgw|ops|chaos)_[0-9a-f]{32}$'" |
    while read -r db; do psql -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
  "$(nisshi_bin)" topic list --broker "tcp://127.0.0.1:$BROKER_PORT" 2>/dev/null |
    grep -oE '"name":"[a-z_]+_[0-9a-f]{32}(\.dlq)?"' | sed 's/^"name":"//; s/"$//' |
    while read -r topic; do
      "$(nisshi_bin)" topic delete --broker "tcp://127.0.0.1:$BROKER_PORT" "$topic" >/dev/null 2>&1 || true
    done || true
}
