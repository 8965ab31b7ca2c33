#!/usr/bin/env bash
# The quickstart smoke: the customer journey end to end against a running platform.
# Health of both services, manager login, a category and a product, a guest cart,
# checkout with an Idempotency-Key (and its replay), then the order read from the order
# service until it is PAID.
#
# Usage: scripts/validate-quickstart.sh [--target local|compose|<env-file>]
#                                       [--customer-base URL] [--order-base URL]
#                                       [--timeout SECONDS]
#   local, compose   http://127.0.0.1:8080 and http://127.0.0.1:8081
#   <env-file>       a file setting CUSTOMER_BASE_URL and ORDER_BASE_URL
# The manager's password is read from OPSCTL_SMOKE_PASSWORD (as `opsctl smoke` reads it;
# never a flag, no default), the username from OPSCTL_SMOKE_USERNAME (default manager).
# Locally, scripts/up.sh passes the demo password.
# Exits non-zero with one line naming the step that failed.
set -euo pipefail

target=local customer_base= order_base= timeout=30
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a value}; shift 2 ;;
    --customer-base) customer_base=${2:?}; shift 2 ;;
    --order-base) order_base=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

case "$target" in
  local|compose) CUSTOMER_BASE_URL=http://127.0.0.1:8080 ORDER_BASE_URL=http://127.0.0.1:8081 ;;
  *)
    [ -f "$target" ] || { echo "error: --target '$target' is neither local, compose nor an env file" >&2; exit 2; }
    # shellcheck disable=SC1090
    source "$target"
    : "${CUSTOMER_BASE_URL:?the env file must set CUSTOMER_BASE_URL}" "${ORDER_BASE_URL:?the env file must set ORDER_BASE_URL}"
    ;;
esac
[ -n "${OPSCTL_SMOKE_PASSWORD:-}" ] || { echo "error: set OPSCTL_SMOKE_PASSWORD to the manager's password (see --help)" >&2; exit 2; }
smoke_username=${OPSCTL_SMOKE_USERNAME:-manager}
CUSTOMER_BASE_URL=${customer_base:-$CUSTOMER_BASE_URL}
ORDER_BASE_URL=${order_base:-$ORDER_BASE_URL}

command -v jq >/dev/null || {
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq jq >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }
  else echo "error: jq is required" >&2; exit 2; fi
}

fail() { echo "quickstart FAILED at step '$step': $*" >&2; exit 1; }
ok() { printf '  ok  %s\n' "$step"; }
run_id=$(cat /proc/sys/kernel/random/uuid)
correlation="qs-$target-$run_id"
body=$(mktemp) login=$(mktemp)
trap 'rm -f "$body" "$login"' EXIT

# call METHOD URL [JSON] [extra curl args...] -> sets $status, body in $body
call() {
  local method=$1 url=$2 data=${3:-}
  shift 3 || shift $#
  local args=(-sS -o "$body" -w '%{http_code}' -X "$method" -H "X-Correlation-ID: $correlation" "$@")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data "$data")
  status=$(curl "${args[@]}" "$url") || fail "cannot reach $url"
}
expect() { [ "$status" = "$1" ] || fail "expected HTTP $1, got $status: $(head -c 300 "$body")"; }

echo "quickstart against $CUSTOMER_BASE_URL and $ORDER_BASE_URL (correlation id $correlation)"

step="customer-facing-service ready"
call GET "$CUSTOMER_BASE_URL/actuator/health/readiness"; expect 200; ok
step="order-management-service ready"
call GET "$ORDER_BASE_URL/actuator/health/readiness"; expect 200; ok

step="manager login"
# Through a file, not curl's arguments, which any user of the machine can list.
jq -nc --arg u "$smoke_username" --arg p "$OPSCTL_SMOKE_PASSWORD" '{username: $u, password: $p}' >"$login"
call POST "$CUSTOMER_BASE_URL/api/v1/auth/login" "@$login"; expect 200
token=$(jq -er .accessToken "$body") || fail "no accessToken in $(cat "$body")"
auth=(-H "Authorization: Bearer $token"); ok

step="create category"
call POST "$CUSTOMER_BASE_URL/api/v1/categories" "{\"name\":\"Quickstart $run_id\",\"description\":\"quickstart smoke\"}" "${auth[@]}"; expect 201
category_id=$(jq -er .id "$body"); ok

step="create product"
sku="QS-$(echo "$run_id" | tr -d - | head -c 12 | tr a-z A-Z)"
call POST "$CUSTOMER_BASE_URL/api/v1/products" \
  "{\"sku\":\"$sku\",\"name\":\"Quickstart widget\",\"description\":\"smoke\",\"price\":49.99,\"inventoryQuantity\":10,\"categoryId\":\"$category_id\"}" \
  "${auth[@]}"; expect 201
product_id=$(jq -er .id "$body"); ok

step="product visible in the catalogue"
call GET "$CUSTOMER_BASE_URL/api/v1/products/$product_id"; expect 200
[ "$(jq -r .sku "$body")" = "$sku" ] || fail "wrong product returned"; ok

session="qs-session-$run_id"
step="add to cart"
call POST "$CUSTOMER_BASE_URL/api/v1/carts/$session/items" "{\"productId\":\"$product_id\",\"quantity\":2}"; expect 200
[ "$(jq -r '.items | length' "$body")" = 1 ] || fail "cart has no line: $(cat "$body")"; ok

checkout='{"sessionId":"'"$session"'","customerInfo":{"name":"Ada Lovelace","email":"ada@example.com","phone":"+442071234567","shippingAddress":{"street":"12 St James Square","city":"London","state":"LDN","postalCode":"SW1Y 4JH","country":"GBR"}}}'
step="checkout"
call POST "$CUSTOMER_BASE_URL/api/v1/checkout" "$checkout" -H "Idempotency-Key: qs-$run_id"; expect 201
order_number=$(jq -er .orderNumber "$body") || fail "no orderNumber in $(cat "$body")"
first=$(cat "$body"); ok

step="checkout replay returns the same response"
call POST "$CUSTOMER_BASE_URL/api/v1/checkout" "$checkout" -H "Idempotency-Key: qs-$run_id"; expect 201
[ "$(cat "$body")" = "$first" ] || fail "replay differs: $(cat "$body")"; ok

step="order $order_number PAID"
deadline=$((SECONDS + timeout)); order_status=
while [ $SECONDS -lt $deadline ]; do
  call GET "$ORDER_BASE_URL/api/v1/orders/$order_number"
  if [ "$status" = 200 ]; then
    [ "$(jq -r '.items[0].productSku' "$body")" = "$sku" ] || fail "order $order_number is not ours: $(head -c 300 "$body")"
    order_status=$(jq -r .status "$body")
    [ "$order_status" = PAID ] && break
    [ "$order_status" = FAILED ] && fail "order failed: $(cat "$body")"
  fi
  sleep 0.2
done
[ "$order_status" = PAID ] || fail "order not PAID after ${timeout}s (last status '${order_status:-none}', HTTP $status)"; ok

echo "quickstart passed: order $order_number is PAID"
