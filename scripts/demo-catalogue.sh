#!/usr/bin/env bash
# Fills an empty catalogue with the demo shop of infrastructure/demo/catalogue.json (six
# categories, 29 products with descriptions, prices and stock, a few nearly or wholly out
# of stock), through the public API as a manager, so a first visit to the storefront has
# something to browse. A catalogue that holds any product is left exactly as it is.
#   scripts/demo-catalogue.sh [--customer-base URL] [--file PATH]
# The manager's password comes from OPSCTL_SMOKE_PASSWORD (user OPSCTL_SMOKE_USERNAME,
# default manager), never from the command line. scripts/up.sh runs it with the local
# demo manager unless given --no-demo-catalogue.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
base=${CUSTOMER_BASE_URL:-http://127.0.0.1:8080}
file=$ROOT/infrastructure/demo/catalogue.json
while [ $# -gt 0 ]; do
  case "$1" in
    --customer-base) base=${2:?--customer-base needs a URL}; shift 2 ;;
    --file) file=${2:?--file needs a path}; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -r "$file" ] || { echo "error: cannot read the catalogue $file" >&2; exit 2; }
[ -n "${OPSCTL_SMOKE_PASSWORD:-}" ] || { echo "error: set OPSCTL_SMOKE_PASSWORD to the manager's password" >&2; exit 2; }
command -v jq >/dev/null || { echo "error: jq is required" >&2; exit 2; }

body=$(mktemp) request=$(mktemp)
trap 'rm -f "$body" "$request"' EXIT
call() { # METHOD PATH [request file] -> HTTP status; answer in $body
  local args=(-sS -o "$body" -w '%{http_code}' -X "$1")
  [ -n "${token:-}" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "@$3")
  curl "${args[@]}" "$base$2"
}

status=$(call GET "/api/v1/products?page=0&size=1")
[ "$status" = 200 ] || { echo "error: the catalogue answered $status: $(head -c 200 "$body")" >&2; exit 1; }
existing=$(jq -r '.totalElements' "$body")
if [ "$existing" != 0 ]; then
  echo "demo catalogue: the catalogue already holds $existing product(s); left as it is"
  exit 0
fi

jq -nc --arg u "${OPSCTL_SMOKE_USERNAME:-manager}" --arg p "$OPSCTL_SMOKE_PASSWORD" \
  '{username: $u, password: $p}' >"$request"
status=$(call POST /api/v1/auth/login "$request")
[ "$status" = 200 ] || { echo "error: manager login answered $status" >&2; exit 1; }
token=$(jq -er .accessToken "$body")

categories=0 products=0
while IFS= read -r category; do
  jq -c '{name, description}' <<<"$category" >"$request"
  status=$(call POST /api/v1/categories "$request")
  [ "$status" = 201 ] || { echo "error: creating category $(jq -r .name <<<"$category") answered $status: $(head -c 300 "$body")" >&2; exit 1; }
  category_id=$(jq -er .id "$body")
  categories=$((categories + 1))
  while IFS= read -r product; do
    jq -c --arg c "$category_id" '. + {categoryId: $c}' <<<"$product" >"$request"
    status=$(call POST /api/v1/products "$request")
    [ "$status" = 201 ] || { echo "error: creating product $(jq -r .sku <<<"$product") answered $status: $(head -c 300 "$body")" >&2; exit 1; }
    products=$((products + 1))
  done < <(jq -c '.products[]' <<<"$category")
done < <(jq -c '.categories[]' "$file")
echo "demo catalogue: $categories categories and $products products created at $base"
