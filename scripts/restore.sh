#!/usr/bin/env bash
# Restores a dump written by scripts/backup.sh (pg_dump -Fc) into a database with
# pg_restore. The database is created when missing. A database that already has tables
# is refused unless --force, which drops and recreates the dumped objects.
#
# Usage: scripts/restore.sh <dump-file> --database NAME|URL [--force]
#        scripts/restore.sh --all [--dir DIR] [--stamp STAMP] [--force]
#   --database  target database name on $PGHOST, or a postgres:// URL
#   --force     restore into a non-empty database (pg_restore --clean --if-exists)
#   --all       every platform database (customer_db, order_db, payment_gateway_db) from
#               one run of backup.sh: the newest stamp with a dump of each, or --stamp;
#               into $CUSTOMER_DATABASE_URL, $ORDER_DATABASE_URL and
#               $PAYMENT_GATEWAY_DATABASE_URL when set, else the names on $PGHOST
#   --dir       where --all finds the dumps (default $BACKUP_DIR or /var/backups/ecommerce-platform)
#   --stamp     the backup.sh run to restore, e.g. 20260102T021500Z
# Connection defaults: PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGPASSWORD=postgres.
# Typical recovery: stop the service that owns the database, restore, start it again.
set -euo pipefail

dump= target= force= all= stamp=
dir=${BACKUP_DIR:-/var/backups/ecommerce-platform}
while [ $# -gt 0 ]; do
  case "$1" in
    --database) target=${2:?--database needs a value}; shift 2 ;;
    --force) force=1; shift ;;
    --all) all=1; shift ;;
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --stamp) stamp=${2:?--stamp needs a value}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$dump" ] || { echo "error: one dump file only" >&2; exit 2; }; dump=$1; shift ;;
  esac
done
if [ -n "$all" ]; then
  [ -z "$dump" ] && [ -z "$target" ] || { echo "error: --all takes no dump file or --database" >&2; exit 2; }
  names=(customer_db order_db payment_gateway_db)
  targets=("${CUSTOMER_DATABASE_URL:-customer_db}" "${ORDER_DATABASE_URL:-order_db}"
    "${PAYMENT_GATEWAY_DATABASE_URL:-payment_gateway_db}")
  if [ -z "$stamp" ]; then
    # The newest run of backup.sh that dumped every database.
    for s in $(find "$dir" -maxdepth 1 -name "${names[0]}-*.dump" -printf '%f\n' 2>/dev/null |
      sed -n "s/^${names[0]}-\([0-9]*T[0-9]*Z\)\.dump$/\1/p" | sort -r); do
      complete=1
      for n in "${names[@]}"; do [ -f "$dir/$n-$s.dump" ] || complete=; done
      if [ -n "$complete" ]; then stamp=$s; break; fi
    done
    [ -n "$stamp" ] || { echo "error: no complete set of dumps (${names[*]}) in $dir" >&2; exit 2; }
  fi
  for n in "${names[@]}"; do
    [ -f "$dir/$n-$stamp.dump" ] || { echo "error: no dump $dir/$n-$stamp.dump" >&2; exit 2; }
  done
  echo "restore: the set $stamp from $dir"
  for i in "${!names[@]}"; do
    "$0" "$dir/${names[$i]}-$stamp.dump" --database "${targets[$i]}" ${force:+--force}
  done
  exit 0
fi
[ -n "$dump" ] || { echo "error: name the dump file (see --help)" >&2; exit 2; }
[ -f "$dump" ] || { echo "error: no such dump: $dump" >&2; exit 2; }
[ -n "$target" ] || { echo "error: --database is required" >&2; exit 2; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-postgres}
command -v pg_restore >/dev/null || { echo "error: pg_restore is not installed (Debian: postgresql-client)" >&2; exit 1; }

name=${target##*/}; name=${name%%\?*}
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "error: cannot tell the database name of '$target'" >&2; exit 2; }
if [[ "$target" == postgres://* || "$target" == postgresql://* ]]; then
  server=${target%/*}/postgres
else
  server=postgres
fi
pg_restore --list "$dump" >/dev/null || { echo "error: $dump is not a pg_dump custom-format file" >&2; exit 2; }

exists=$(psql -d "$server" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$name'")
if [ "$exists" != 1 ]; then
  psql -d "$server" -qc "CREATE DATABASE \"$name\"" >/dev/null
  echo "restore: created database $name"
fi
tables=$(psql -d "$target" -Atqc "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
args=(--no-owner --exit-on-error -d "$target")
if [ "$tables" != 0 ]; then
  [ -n "$force" ] || { echo "error: database $name is not empty ($tables tables); use --force to overwrite it" >&2; exit 1; }
  args+=(--clean --if-exists)
fi
pg_restore "${args[@]}" "$dump"
echo "restore: $dump restored into $name"
