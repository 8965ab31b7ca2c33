#!/usr/bin/env bash
# Regenerates the query metadata in .sqlx/ that offline builds check every SQL statement
# against. Run it after adding or changing a query or a migration:
#   scripts/sqlx-prepare.sh                      # the whole workspace
#   scripts/sqlx-prepare.sh -p order-management-service
# It applies every migration of every database to a scratch database (their table names
# do not collide: the gateway's carry the gateway_ prefix) and compiles with the macros
# online.
set -euo pipefail
cd "$(dirname "$0")/.."
PGHOST=${PGHOST:-127.0.0.1}
PGUSER=${PGUSER:-postgres}
db="ecommerce_sqlx_prepare_$$"
psql_() { psql -h "$PGHOST" -U "$PGUSER" -v ON_ERROR_STOP=1 -q "$@"; }
psql_ -d postgres -c "CREATE DATABASE $db"
trap 'psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
for dir in customer_db order_db payment_gateway_db; do
  for f in $(ls migrations/$dir/*.sql 2>/dev/null | sort -V); do
    psql_ -d "$db" -f "$f" >/dev/null
  done
done
mkdir -p .sqlx
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(--workspace)
# The macros do not track DATABASE_URL, so make cargo re-expand them.
find crates -name "*.rs" -print0 | xargs -0 touch
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" DATABASE_URL="postgres://$PGUSER@$PGHOST/$db" \
  cargo check --all-targets "${packages[@]}"
echo "query metadata written to .sqlx/ ($(ls .sqlx | wc -l) queries)"
