#!/usr/bin/env bash
# Proves the continuous backups of scripts/backup-setup.sh on a private PostgreSQL
# cluster (initdb --data-checksums into a temporary directory, port 5499 by default;
# the machine's cluster is never touched), timing each step:
#   - backup-setup.sh configures it (ALTER SYSTEM, a restart for archive_mode, stanza);
#   - retention: two full backups dated 20 and 17 days ago (libfaketime) and one today;
#     the time-based retention (15 days) expires the 20-day-old one and keeps the
#     17-day-old one, the newest older than the window, so every second of the last 15
#     days stays restorable; then count-based retention (repo1-retention-full=1) keeps
#     only the newest full backup;
#   - the three platform databases get their schemas (migrations/*/ in order) and rows
#     1-10, a full backup is taken, rows 11-20 written, time T noted, rows 21-30
#     written, a differential backup taken, and rows 31-40 written (WAL only);
#   - a restore to T (--type=time) into a new data directory has exactly rows 1-20 in
#     every database; a restore to the latest point has rows 1-40 in every database;
#   - order_db alone restored to T (--db-include) into a side cluster, and rows deleted
#     on the live server copied back from it (the runbook's one-table recipe);
#   - pgbackrest verify finds the repository sound; page checksums were verified;
#   - scripts/backup.sh dumps all three databases by default and scripts/restore.sh --all
#     restores them after they are dropped.
# Prints one timing line per step and a summary; exits non-zero on the first failure.
# Usage (as root): scripts/test-backups.sh [--keep]   (PORT=5499; --keep leaves the temp dir)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

keep=
[ "${1:-}" = --keep ] && keep=1
[ "$(id -u)" -eq 0 ] || die "run as root (it runs PostgreSQL and pgBackRest as the postgres user)"
apt_install pgbackrest faketime
port=${PORT:-5499} side_port=$((${PORT:-5499} - 1))
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -n 1)
port_open "$port" && die "port $port is taken; set PORT"
port_open "$side_port" && die "port $side_port is taken; set PORT"

tmp=$(mktemp -d /tmp/ecommerce-backup-test.XXXXXX)
chown postgres:postgres "$tmp"
chmod 700 "$tmp"
as_pg() { runuser -u postgres -- "$@"; }
stop_all() {
  for d in "$tmp/data" "$tmp/restore-t" "$tmp/restore-latest" "$tmp/restore-one"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  if [ -n "$keep" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap stop_all EXIT

started=$(date +%s.%N)
step_start() { t0=$(date +%s.%N); }
step_end() { printf 'timing: %-58s %6.2f s\n' "$1" "$(echo "$(date +%s.%N) - $t0" | bc)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step_start
as_pg mkdir -p "$tmp/sock" "$tmp/log"
as_pg "$bin/initdb" --data-checksums -U postgres --auth=trust -D "$tmp/data" >/dev/null
start_pg() { # data-dir port
  as_pg "$bin/pg_ctl" -D "$1" -w -t 120 -l "$1/server.log" \
    -o "-p $2 -k $tmp/sock -c listen_addresses=127.0.0.1" start >/dev/null
}
start_pg "$tmp/data" "$port"
step_end "initdb --data-checksums and start (port $port)"

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
conf=$tmp/pgbackrest.conf
step_start
scripts/backup-setup.sh --stanza drill --config "$conf" --repo "$tmp/repo" --log-path "$tmp/log" \
  --pgdata "$tmp/data" --socket "$tmp/sock" --no-cron --no-first-backup >/dev/null
[ "$(psql -d postgres -Atqc 'SHOW archive_mode')" = on ] || fail "archive_mode is not on after backup-setup.sh"
grep -q '^checksum-page=y' "$conf" || fail "checksum-page is not on for a cluster with data checksums"
step_end "backup-setup.sh (config, ALTER SYSTEM, restart, stanza)"
# Running it again changes nothing that needs a restart (--no-restart would exit 3).
step_start
scripts/backup-setup.sh --stanza drill --config "$conf" --repo "$tmp/repo" --log-path "$tmp/log" \
  --pgdata "$tmp/data" --socket "$tmp/sock" --no-cron --no-first-backup --no-restart >/dev/null ||
  fail "backup-setup.sh run a second time wanted a restart or failed"
step_end "backup-setup.sh again (no restart needed)"
pgb() { as_pg pgbackrest --config="$conf" --stanza=drill "$@"; }
labels() { pgb info --output=json | python3 -c 'import json,sys; print(" ".join(b["label"] for b in json.load(sys.stdin)[0]["backup"]))'; }

# Retention, with backups dated in the past: pgBackRest takes the time of its own
# clock, which libfaketime moves back.
step_start
# pgBackRest dates a backup by the database's clock, so the cluster runs with the moved
# clock too while the past backups are taken.
backup_dated() { # offset (libfaketime)
  as_pg "$bin/pg_ctl" -D "$tmp/data" -w -m fast stop >/dev/null
  as_pg env LD_PRELOAD="$faketime_lib" FAKETIME="$1" "$bin/pg_ctl" -D "$tmp/data" -w -t 120 \
    -l "$tmp/data/server.log" -o "-p $port -k $tmp/sock -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg env LD_PRELOAD="$faketime_lib" FAKETIME="$1" pgbackrest --config="$conf" --stanza=drill --type=full backup >/dev/null
}
backup_dated -20d
backup_dated -17d
as_pg "$bin/pg_ctl" -D "$tmp/data" -w -m fast stop >/dev/null
start_pg "$tmp/data" "$port"
read -r old20 old17 <<<"$(labels)"
[ -n "$old17" ] || fail "the two past full backups were not both recorded: $(labels)"
step_end "two full backups dated 20 and 17 days ago"

psql_db() { psql -d "$1" -v ON_ERROR_STOP=1 -Atqc "$2"; }
step_start
for db in "${PLATFORM_DATABASES[@]}"; do
  psql_db postgres "CREATE DATABASE $db" >/dev/null
  for f in $(ls migrations/"$db"/*.sql | sort -V); do
    psql -d "$db" -v ON_ERROR_STOP=1 -q -f "$f" >/dev/null
  done
  psql_db "$db" "CREATE TABLE backup_drill (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
                 INSERT INTO backup_drill (n) SELECT generate_series(1, 10)" >/dev/null
done
step_end "schemas of ${PLATFORM_DATABASES[*]} (migrations) and rows 1-10"

step_start
pgb --type=full backup >/dev/null
step_end "full backup (today)"
current=$(labels)
case " $current " in *" $old20 "*) fail "time-based retention (15 days) kept the 20-day-old full backup $old20: $current" ;; esac
case " $current " in *" $old17 "*) ;; *) fail "time-based retention dropped $old17, the newest full backup older than the window: $current" ;; esac
echo "retention: after today's full backup, time-based retention (15 days) expired $old20 and kept $old17 (the window's base): $current"
pgb expire --repo1-retention-full-type=time --repo1-retention-full=15 >/dev/null

insert() { # from to
  for db in "${PLATFORM_DATABASES[@]}"; do
    psql_db "$db" "INSERT INTO backup_drill (n) SELECT generate_series($1, $2)" >/dev/null
  done
}
insert 11 20
# T: a second after rows 11-20 committed, a second before rows 21-30.
sleep 1
target=$(psql_db postgres "SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.USOF')")
sleep 1
insert 21 30
step_start
pgb --type=diff backup >/dev/null
step_end "differential backup"
insert 31 40
# The last rows are only in WAL: switch segments and wait until they are archived.
step_start
pgb check >/dev/null
step_end "WAL switch and archive (pgbackrest check)"

restore_and_count() { # dir port expected-rows restore-args...
  local dir=$1 p=$2 want=$3
  shift 3
  step_start
  as_pg mkdir -m 700 "$dir"
  pgb --pg1-path="$dir" --archive-mode=off "$@" restore >/dev/null
  start_pg "$dir" "$p"
  # Recovery to a target ends with promotion; wait until it accepts writes.
  for _ in $(seq 1 120); do
    [ "$(psql -p "$p" -d postgres -Atqc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
    sleep 0.5
  done
  step_end "restore ${*:-latest} and start"
  for db in "${PLATFORM_DATABASES[@]}"; do
    got=$(psql -p "$p" -d "$db" -Atqc "SELECT count(*) || ' ' || coalesce(max(n), 0) FROM backup_drill")
    [ "$got" = "$want $want" ] || fail "$db restored ($*) has rows '$got' (count max), expected rows 1-$want"
  done
  echo "restore ${*:-latest}: rows 1-$want in ${PLATFORM_DATABASES[*]}"
  as_pg "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null
}
restore_and_count "$tmp/restore-t" "$side_port" 20 --type=time "--target=$target" --target-action=promote
restore_and_count "$tmp/restore-latest" "$side_port" 40
# One database to a point (the runbook's side cluster, --db-include): order_db alone.
step_start
as_pg mkdir -m 700 "$tmp/restore-one"
pgb --pg1-path="$tmp/restore-one" --archive-mode=off --type=time "--target=$target" --target-action=promote \
  --db-include=order_db restore >/dev/null
start_pg "$tmp/restore-one" "$side_port"
for _ in $(seq 1 120); do
  [ "$(psql -p "$side_port" -d postgres -Atqc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
  sleep 0.5
done
step_end "restore order_db alone (--db-include) to T and start"
got=$(psql -p "$side_port" -d order_db -Atqc "SELECT count(*) || ' ' || max(n) FROM backup_drill")
[ "$got" = "20 20" ] || fail "order_db restored alone to T has rows '$got', expected rows 1-20"
echo "restore of order_db alone to T: rows 1-20"
# The runbook's one-table recipe (5.10): rows deleted on the live server are copied back
# from the side cluster through a scratch table, only those that are missing.
psql_db order_db "DELETE FROM backup_drill WHERE n <= 15" >/dev/null
step_start
psql -p "$side_port" -d order_db -v ON_ERROR_STOP=1 -qc "\copy (SELECT * FROM backup_drill) TO '$tmp/rows.csv' CSV"
psql -d order_db -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
CREATE TABLE restored_backup_drill (LIKE backup_drill);
\copy restored_backup_drill FROM '$tmp/rows.csv' CSV
INSERT INTO backup_drill SELECT r.* FROM restored_backup_drill r WHERE NOT EXISTS (SELECT 1 FROM backup_drill o WHERE o.n = r.n);
DROP TABLE restored_backup_drill;
SQL
step_end "one table: rows copied back from the side cluster"
got=$(psql_db order_db "SELECT count(*) || ' ' || max(n) FROM backup_drill")
[ "$got" = "40 40" ] || fail "after copying the deleted rows back, order_db has rows '$got', expected 1-40"
echo "one table: the 15 deleted rows copied back from the side cluster (rows 1-40 again)"
as_pg "$bin/pg_ctl" -D "$tmp/restore-one" -m fast stop >/dev/null

step_start
pgb verify >/dev/null
step_end "pgbackrest verify (every file's checksum, WAL continuity)"

# The logical dumps: backup.sh dumps every platform database by default, and
# restore.sh --all brings the set back in one command.
step_start
scripts/backup.sh --dir "$tmp/dumps" >/dev/null
step_end "backup.sh (pg_dump of every database)"
[ "$(ls "$tmp/dumps" | grep -c '^payment_gateway_db-')" = 1 ] || fail "backup.sh did not dump payment_gateway_db by default"
for db in "${PLATFORM_DATABASES[@]}"; do psql_db postgres "DROP DATABASE $db" >/dev/null; done
step_start
scripts/restore.sh --all --dir "$tmp/dumps" >/dev/null
step_end "restore.sh --all (the three databases dropped first)"
for db in "${PLATFORM_DATABASES[@]}"; do
  got=$(psql_db "$db" "SELECT count(*) FROM backup_drill")
  [ "$got" = 40 ] || fail "$db after restore.sh --all has $got rows, expected 40"
done
echo "logical dumps: backup.sh dumped ${PLATFORM_DATABASES[*]}; restore.sh --all restored all 40 rows of each"

# Count-based retention: keep one full backup; the older ones and their WAL go.
newest=$(labels | tr ' ' '\n' | grep 'F$' | tail -n 1)
pgb expire --repo1-retention-full-type=count --repo1-retention-full=1 >/dev/null
left=$(labels)
[ "$(echo "$left" | tr ' ' '\n' | grep -c 'F$')" = 1 ] || fail "count retention 1 left these full backups: $left"
case "$left" in "$newest"*) ;; *) fail "count retention kept the wrong backup: $left (newest full $newest)" ;; esac
echo "retention: count-based (repo1-retention-full=1) expired every full backup but $newest: $left"

size=$(pgb info --output=json | python3 -c "import json, sys
b = json.load(sys.stdin)[0]['backup'][0]['info']
print('%.1f MB cluster, %.1f MB in the repository' % (b['size'] / 1e6, b['repository']['delta'] / 1e6))")
echo "full backup size: $size"
printf 'test-backups: passed in %.1f s\n' "$(echo "$(date +%s.%N) - $started" | bc)"
