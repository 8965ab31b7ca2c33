#!/usr/bin/env bash
# Backs up the platform's PostgreSQL databases with pg_dump (custom format, -Fc) into a
# backup directory, one timestamped file per database, and deletes dumps older than the
# retention period (the runbook asks for more than 14 days; default 15).
#
# Usage: scripts/backup.sh [--dir DIR] [--retention-days N] [--database NAME|URL]...
#   --dir             where dumps go (default $BACKUP_DIR or /var/backups/ecommerce-platform)
#   --retention-days  delete this script's dumps older than N days (default 15; at least 15)
#   --database        a database name on $PGHOST or a postgres:// URL; repeatable.
#                     Default: every platform database: $CUSTOMER_DATABASE_URL,
#                     $ORDER_DATABASE_URL and $PAYMENT_GATEWAY_DATABASE_URL when set, else
#                     customer_db, order_db and payment_gateway_db (the ledger) on $PGHOST.
# Connection defaults: PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGPASSWORD=postgres.
# Prints one line per dump written; exits non-zero (and keeps older dumps) on failure.
# These logical dumps move data between machines; continuous backups with point-in-time
# recovery are pgBackRest's (scripts/backup-setup.sh). scripts/restore.sh --all restores a set.
set -euo pipefail

dir=${BACKUP_DIR:-/var/backups/ecommerce-platform}
retention=15
databases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --retention-days) retention=${2:?--retention-days needs a value}; shift 2 ;;
    --database) databases+=("${2:?--database needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$retention" =~ ^[0-9]+$ ]] || { echo "error: --retention-days must be a number" >&2; exit 2; }
[ "$retention" -ge 15 ] || { echo "error: --retention-days must be at least 15 (the runbook keeps more than 14 days)" >&2; exit 2; }
if [ ${#databases[@]} -eq 0 ]; then
  databases=("${CUSTOMER_DATABASE_URL:-customer_db}" "${ORDER_DATABASE_URL:-order_db}"
    "${PAYMENT_GATEWAY_DATABASE_URL:-payment_gateway_db}")
fi
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-postgres}
command -v pg_dump >/dev/null || { echo "error: pg_dump is not installed (Debian: postgresql-client)" >&2; exit 1; }

mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for db in "${databases[@]}"; do
  name=${db##*/}; name=${name%%\?*}
  [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "error: cannot tell the database name of '$db'" >&2; exit 2; }
  file="$dir/$name-$stamp.dump"
  if ! pg_dump -Fc --no-owner -d "$db" -f "$file.partial"; then
    rm -f "$file.partial"
    echo "error: pg_dump of $name failed; older dumps kept" >&2
    exit 1
  fi
  mv "$file.partial" "$file"
  echo "backup: $file ($(du -h "$file" | cut -f1))"
done
# Only this script's dumps (<name>-<UTC stamp>.dump) are ever deleted.
find "$dir" -maxdepth 1 -type f -name '*-[0-9]*T[0-9]*Z.dump' -mtime "+$retention" -print -delete |
  sed 's/^/deleted (older than '"$retention"' days): /'
