#!/usr/bin/env bash
# The image built and started for real, with podman: the Dockerfile's runtime stage
# (target runtime-prebuilt) built from binaries already built on this machine, on a
# local Debian bookworm base (no registry is needed: `debootstrap --variant=minbase
# bookworm`, cached under /var/tmp/ecommerce-platform/); then each service started in
# it as the pods run it (read-only root with a tmpfs /tmp, uid 10001, every capability
# dropped, no privilege escalation) against this machine's PostgreSQL, Redis and broker;
# then the quickstart smoke (scripts/validate-quickstart.sh) against it. The containers
# use the host's network, bind 127.0.0.1 on spare ports (not 8080/8081/9090, which the
# local platform holds), and fresh databases, topics, consumer groups and a Redis key
# prefix of their own, dropped at the end: the local platform's books are untouched.
#
# Usage: scripts/container-smoke.sh [--bin-dir DIR] [--keep]
#   --bin-dir DIR  where the four binaries are (default: the newest complete set of
#                  $CARGO_TARGET_DIR or /var/cache/ecom/target, release before debug)
#   --keep         leave the containers and databases for inspection
# Installs podman, runc and debootstrap (Debian packages) when missing. Needs root.
# Prints each step with its elapsed time; exits non-zero naming the step that failed.
# scripts/test.sh runs it with the debug binaries its test run built: 15 to 30 s here
# (about 2 minutes the first time on a machine, which makes and imports the base).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

bin_dir= keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
say() { printf '[container-smoke +%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
die() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (podman with runc, debootstrap)"
BINARIES="customer-facing-service order-management-service payment-gateway opsctl"

if [ -z "$bin_dir" ]; then
  best=0
  for d in "${CARGO_TARGET_DIR:-}/release" "${CARGO_TARGET_DIR:-}/debug" /var/cache/ecom/target/release /var/cache/ecom/target/debug; do
    complete=1 oldest=
    for b in $BINARIES; do
      [ -x "$d/$b" ] || { complete=0; break; }
      m=$(stat -c %Y "$d/$b"); { [ -z "$oldest" ] || [ "$m" -lt "$oldest" ]; } && oldest=$m
    done
    if [ "$complete" -eq 1 ] && [ "$oldest" -gt "$best" ]; then best=$oldest bin_dir=$d; fi
  done
  [ -n "$bin_dir" ] || die "no built binaries (cargo build --release --bins, or --bin-dir DIR)"
fi
for b in $BINARIES; do [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing"; done
say "binaries from $bin_dir"

# ---------------------------------------------------------------- tools
missing=()
for pair in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
# runc as the runtime (crun is not installed here), and explicit limits: podman's default
# of raising them to the hard maximum fails in this machine's container.
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

# ---------------------------------------------------------------- base image
cache=/var/tmp/ecommerce-platform
base_tar=$cache/debian-bookworm-minbase.tar
BASE_IMAGE=localhost/ecommerce-bookworm-base:latest
mkdir -p "$cache"
if [ ! -s "$base_tar" ]; then
  say "making a Debian bookworm base with debootstrap (35 to 90 s, once per machine)"
  rootfs=$(mktemp -d "$cache/bookworm-rootfs.XXXXXX")
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
    || { rm -rf "$rootfs"; die "debootstrap failed (see $cache/debootstrap.log)"; }
  tar -C "$rootfs" -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  rm -rf "$rootfs"
fi
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  say "importing the base into podman as $BASE_IMAGE"
  "${PODMAN[@]}" import "$base_tar" "$BASE_IMAGE" >/dev/null
fi

# ---------------------------------------------------------------- runtime image
IMAGE=localhost/ecommerce-platform:smoke
context=$(mktemp -d)
run_id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
containers=() databases=()
cleanup() {
  rm -rf "$context"
  # Earlier runs' images, untagged by this build (170 MB each with debug binaries).
  "${PODMAN[@]}" image prune -f --filter label=ecommerce-platform.container-smoke=1 >/dev/null 2>&1 || true
  [ "$keep" -eq 1 ] && { say "kept containers ${containers[*]:-} and databases ${databases[*]:-}"; return; }
  for c in "${containers[@]}"; do "${PODMAN[@]}" rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  for db in "${databases[@]}"; do
    psql "$(db_url postgres)" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  # This run's topics and their dead-letter topics (smoke-<run id>.*).
  local nisshi
  nisshi=$(nisshi_bin 2>/dev/null) || return 0
  { "$nisshi" topic list --broker "tcp://127.0.0.1:$BROKER_PORT" 2>/dev/null || true; } |
    grep -oE "\"name\":\"smoke-$run_id\\.[a-z.]+\"" | sed 's/^"name":"//; s/"$//' |
    while read -r topic; do
      "$nisshi" topic delete --broker "tcp://127.0.0.1:$BROKER_PORT" "$topic" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

cp Dockerfile .dockerignore "$context/"
mkdir "$context/dist"
for b in $BINARIES; do cp "$bin_dir/$b" "$context/dist/"; done
say "building the runtime stage (target runtime-prebuilt) on $BASE_IMAGE"
"${PODMAN[@]}" build "${LIMITS[@]}" --network host --pull=never --target runtime-prebuilt \
  --build-arg "RUNTIME_BASE=$BASE_IMAGE" --label ecommerce-platform.container-smoke=1 -t "$IMAGE" "$context" >"$cache/container-smoke-build.log" 2>&1 \
  || { tail -20 "$cache/container-smoke-build.log"; die "image build (log: $cache/container-smoke-build.log)"; }

# ---------------------------------------------------------------- data of its own
for part in customer order gateway; do
  db="smoke_${run_id}_${part}"
  psql "$(db_url postgres)" -qAtc "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create database $db"
  databases+=("$db")
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
customer_port=$(free_port) order_port=$(free_port) gateway_port=$(free_port)
token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin_token=$(token) service_token=$(token) jwt_secret=$(token)
topic() { echo "smoke-$run_id.$1"; }

# As the pods run: read-only root, a writable /tmp only (the pods' emptyDir), uid 10001,
# no capabilities, no privilege escalation. ENVIRONMENT=ci: the quickstart logs in as the
# demo manager, which production refuses.
run() { # name binary env...
  local name=$1 binary=$2
  shift 2
  local args=(run -d --name "$name" "${LIMITS[@]}" --network host --read-only --tmpfs /tmp:rw,size=64m
              --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges --env ENVIRONMENT=ci)
  for e in "$@"; do args+=(--env "$e"); done
  "${PODMAN[@]}" "${args[@]}" "$IMAGE" "$binary" >/dev/null || die "cannot start $name"
  containers+=("$name")
}

say "starting the three services in containers (127.0.0.1:$customer_port, :$order_port, :$gateway_port)"
run "smoke-$run_id-payment-gateway" payment-gateway \
  "PAYMENT_GATEWAY_SERVER_HOST=127.0.0.1" "PAYMENT_GATEWAY_SERVER_PORT=$gateway_port" \
  "PAYMENT_GATEWAY_DATABASE_URL=$(db_url "smoke_${run_id}_gateway")" \
  "PAYMENT_GATEWAY_ADMIN_TOKEN=$admin_token" "PAYMENT_GATEWAY_SERVICE_TOKEN=$service_token"
run "smoke-$run_id-customer-facing-service" customer-facing-service \
  "CUSTOMER_SERVICE_SERVER_HOST=127.0.0.1" "CUSTOMER_SERVICE_SERVER_PORT=$customer_port" \
  "CUSTOMER_SERVICE_DATABASE_URL=$(db_url "smoke_${run_id}_customer")" \
  "CUSTOMER_SERVICE_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$BROKER_PORT" \
  "CUSTOMER_SERVICE_KAFKA_TOPICS_ORDERS_CREATED=$(topic orders.created)" \
  "CUSTOMER_SERVICE_KAFKA_TOPICS_ORDERS_RELEASED=$(topic orders.released)" \
  "CUSTOMER_SERVICE_KAFKA_CONSUMER_GROUP_ID=smoke-$run_id-customer" \
  "CUSTOMER_SERVICE_REDIS_HOST=127.0.0.1" "CUSTOMER_SERVICE_REDIS_KEY_PREFIX=smoke-$run_id:" \
  "CUSTOMER_SERVICE_JWT_SECRET=$jwt_secret" \
  "CUSTOMER_SERVICE_ORDER_SERVICE_URL=http://127.0.0.1:$order_port"
run "smoke-$run_id-order-management-service" order-management-service \
  "ORDER_SERVICE_SERVER_HOST=127.0.0.1" "ORDER_SERVICE_SERVER_PORT=$order_port" \
  "ORDER_SERVICE_DATABASE_URL=$(db_url "smoke_${run_id}_order")" \
  "ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$BROKER_PORT" \
  "ORDER_SERVICE_KAFKA_TOPICS_ORDERS_CREATED=$(topic orders.created)" \
  "ORDER_SERVICE_KAFKA_TOPICS_PAYMENTS_COMPLETED=$(topic payments.completed)" \
  "ORDER_SERVICE_KAFKA_TOPICS_ORDERS_RELEASED=$(topic orders.released)" \
  "ORDER_SERVICE_KAFKA_CONSUMER_GROUP_ID=smoke-$run_id-order" \
  "ORDER_SERVICE_JWT_SECRET=$jwt_secret" \
  "ORDER_SERVICE_PAYMENT_GATEWAY_URL=http://127.0.0.1:$gateway_port" \
  "ORDER_SERVICE_PAYMENT_GATEWAY_TOKEN=$service_token" \
  "ORDER_SERVICE_CUSTOMER_SERVICE_URL=http://127.0.0.1:$customer_port" \
  "ORDER_SERVICE_CORS_ALLOWED_ORIGINS=http://127.0.0.1:$customer_port"

say "waiting for readiness"
for pair in "payment-gateway:$gateway_port" "customer-facing-service:$customer_port" "order-management-service:$order_port"; do
  name=${pair%%:*} port=${pair#*:}
  deadline=$(( $(date +%s) + 90 ))
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/actuator/health/readiness"; do
    if [ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "smoke-$run_id-$name" 2>/dev/null)" != "true" ] \
       || [ "$(date +%s)" -gt "$deadline" ]; then
      "${PODMAN[@]}" logs --tail 20 "smoke-$run_id-$name" 2>&1 || true
      die "$name in its container never became ready"
    fi
    sleep 1
  done
  c="smoke-$run_id-$name"
  user=$("${PODMAN[@]}" exec "$c" id -u)
  [ "$user" = 10001 ] || die "$name runs as uid $user, not 10001"
  caps=$("${PODMAN[@]}" exec "$c" sh -c 'grep -E "^Cap(Eff|Prm|Bnd):" /proc/1/status' | awk '{print $2}' | sort -u)
  [ "$caps" = 0000000000000000 ] || die "$name keeps capabilities: $caps"
  if "${PODMAN[@]}" exec "$c" sh -c 'touch /usr/local/bin/x' 2>/dev/null; then die "$name's root file system is writable"; fi
  say "$name ready (uid $user, read-only root, no capabilities)"
done

say "quickstart smoke against the containers"
# ENVIRONMENT=ci seeds the demo manager; the smoke takes its password from the environment.
OPSCTL_SMOKE_PASSWORD=manager123 bash scripts/validate-quickstart.sh --target compose \
  --customer-base "http://127.0.0.1:$customer_port" --order-base "http://127.0.0.1:$order_port" --timeout 60 \
  || die "the quickstart smoke against the containers"
say "passed: image built from $bin_dir, three services ready in it, quickstart answered"
