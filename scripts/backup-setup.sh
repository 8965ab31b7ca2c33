#!/usr/bin/env bash
# Sets up continuous backups with point-in-time recovery for the machine's PostgreSQL
# cluster with pgBackRest (Debian package): every database of the cluster, so
# customer_db, order_db and the gateway's ledger payment_gateway_db, is covered.
#
#   1. installs pgbackrest when missing;
#   2. writes the pgBackRest configuration (default /etc/pgbackrest/pgbackrest.conf):
#      repository (default /var/lib/pgbackrest), time-based retention of full backups
#      (default 15 days: any second of the last 15 days can be restored), zstd
#      compression, page checksums verified on every backup when the cluster has them;
#   3. sets wal_level=replica, archive_mode=on, archive_command (pgbackrest archive-push)
#      and archive_timeout=60s with ALTER SYSTEM;
#   4. RESTARTS PostgreSQL when archive_mode or wal_level changed (they need one; the
#      script says so loudly first; --no-restart refuses instead);
#   5. creates the stanza, checks that WAL reaches the repository, takes a first full
#      backup when the repository has none, and installs /etc/cron.d/ecommerce-backups
#      (deploy/cron/ecommerce-backups: full weekly, differential daily, expire, verify).
# Running it again changes nothing that is already right (no second restart).
#
# Usage (as root): scripts/backup-setup.sh [options]
#   --stanza NAME          pgBackRest stanza (default ecommerce)
#   --repo DIR             repository path (default /var/lib/pgbackrest)
#   --config FILE          configuration file (default /etc/pgbackrest/pgbackrest.conf)
#   --log-path DIR         pgBackRest's logs (default /var/log/pgbackrest)
#   --retention-days N     keep every second of the last N days restorable (default 15; >= 14)
#   --pgdata DIR           the cluster's data directory (default: SHOW data_directory)
#   --socket DIR           its Unix socket directory (default /var/run/postgresql)
#   --no-restart           never restart PostgreSQL; exit 3 when a restart is needed
#   --no-cron              do not install the cron schedule
#   --no-first-backup      do not take a full backup when the repository has none
# Connection (for ALTER SYSTEM, superuser): PGHOST PGPORT PGUSER PGPASSWORD
# (default 127.0.0.1:5432 postgres/postgres). pgBackRest itself runs as the OS user
# postgres over the Unix socket.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

stanza=ecommerce repo=/var/lib/pgbackrest config=/etc/pgbackrest/pgbackrest.conf
log_path=/var/log/pgbackrest retention=15 pgdata= socket=/var/run/postgresql
restart=1 cron=1 first_backup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --stanza) stanza=${2:?--stanza needs a value}; shift 2 ;;
    --repo) repo=${2:?--repo needs a value}; shift 2 ;;
    --config) config=${2:?--config needs a value}; shift 2 ;;
    --log-path) log_path=${2:?--log-path needs a value}; shift 2 ;;
    --retention-days) retention=${2:?--retention-days needs a value}; shift 2 ;;
    --pgdata) pgdata=${2:?--pgdata needs a value}; shift 2 ;;
    --socket) socket=${2:?--socket needs a value}; shift 2 ;;
    --no-restart) restart=; shift ;;
    --no-cron) cron=; shift ;;
    --no-first-backup) first_backup=; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$stanza" =~ ^[A-Za-z0-9_-]+$ ]] || die "--stanza: letters, digits, _ and - only"
[[ "$retention" =~ ^[0-9]+$ ]] && [ "$retention" -ge 14 ] ||
  die "--retention-days must be a number of at least 14 (the runbook keeps more than 14 days)"
[ "$(id -u)" -eq 0 ] || die "run as root: it writes $config, $repo and /etc/cron.d, and may restart PostgreSQL"

apt_install pgbackrest
sql() { psql -d postgres -v ON_ERROR_STOP=1 -Atqc "$1"; }
sql 'SELECT 1' >/dev/null || die "cannot connect to PostgreSQL at $PGHOST:$PGPORT as $PGUSER"
[ -n "$pgdata" ] || pgdata=$(sql 'SHOW data_directory')
version=$(sql "SELECT current_setting('server_version_num')::int / 10000")
as_pg() { runuser -u postgres -- "$@"; }
pgb() { as_pg pgbackrest --config="$config" --stanza="$stanza" "$@"; }

# Page checksums can only be verified when the cluster was initialised with them
# (initdb --data-checksums; an existing cluster: pg_checksums --enable while stopped).
checksum_page=n
if [ "$(sql 'SHOW data_checksums')" = on ]; then
  checksum_page=y
else
  log "warning: this cluster has no data checksums, so backups cannot verify pages (files are still checksummed). To enable them: stop PostgreSQL, run pg_checksums --enable -D $pgdata, start it"
fi

log "writing $config (repository $repo, full backups kept for $retention days)"
mkdir -p "$(dirname "$config")" "$repo" "$log_path"
chown postgres:postgres "$repo" "$log_path"
chmod 750 "$repo"
cat >"$config.new" <<EOF
# Written by scripts/backup-setup.sh; run it again rather than editing by hand.
# Continuous backups of the whole PostgreSQL cluster (every database: customer_db,
# order_db, payment_gateway_db): WAL archived by archive_command, full backups weekly
# and differential backups daily (/etc/cron.d/ecommerce-backups).
[global]
# Where backups and archived WAL go. Put it on another disk than the data directory
# (or use an object store: repo1-type=s3 with repo1-s3-bucket, -endpoint, -region).
repo1-path=$repo
# Time-based retention: full backups older than $retention days are expired, but always
# keeping the newest full backup that is older than that, so every second of the last
# $retention days stays restorable. Archived WAL follows the backups it belongs to.
repo1-retention-full-type=time
repo1-retention-full=$retention
repo1-bundle=y
compress-type=zst
process-max=2
start-fast=y
log-path=$log_path
log-level-console=info
log-level-file=detail

[$stanza]
pg1-path=$pgdata
pg1-port=$PGPORT
pg1-socket-path=$socket
# Verify every data page's checksum while backing up (the cluster has them: $checksum_page).
checksum-page=$checksum_page
EOF
chown root:postgres "$config.new"
chmod 640 "$config.new"
mv "$config.new" "$config"

archive_command="pgbackrest --config=$config --stanza=$stanza archive-push %p"
needs_restart=
[ "$(sql 'SHOW archive_mode')" = on ] || needs_restart="archive_mode off -> on"
case "$(sql 'SHOW wal_level')" in replica|logical) ;; *) needs_restart="${needs_restart:+$needs_restart, }wal_level -> replica" ;; esac
[ "$(sql 'SHOW wal_level')" = logical ] || sql "ALTER SYSTEM SET wal_level = 'replica'" >/dev/null
sql "ALTER SYSTEM SET archive_mode = 'on'" >/dev/null
sql "ALTER SYSTEM SET archive_command = '$archive_command'" >/dev/null
# A quiet database still ships its WAL at least once a minute: the recovery point after
# losing the disk is at most a minute behind.
sql "ALTER SYSTEM SET archive_timeout = '60s'" >/dev/null
sql 'SELECT pg_reload_conf()' >/dev/null

if [ -n "$needs_restart" ]; then
  if [ -z "$restart" ]; then
    echo "backup-setup: PostgreSQL needs a RESTART to start archiving ($needs_restart); run again without --no-restart, or restart it yourself and run again" >&2
    exit 3
  fi
  log "!!! RESTARTING PostgreSQL ($pgdata): $needs_restart takes effect only on a restart. Connections drop for a few seconds. !!!"
  cluster=$(pg_lsclusters --no-header 2>/dev/null | awk -v d="$pgdata" '$6 == d {print $1, $2}')
  if [ -n "$cluster" ]; then
    # shellcheck disable=SC2086 # "<version> <name>"
    pg_ctlcluster --skip-systemctl-redirect $cluster restart
  else
    as_pg "/usr/lib/postgresql/$version/bin/pg_ctl" -D "$pgdata" -w -l "$pgdata/restart.log" restart >/dev/null
  fi
  for _ in $(seq 1 60); do sql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  [ "$(sql 'SHOW archive_mode')" = on ] || die "PostgreSQL came back with archive_mode $(sql 'SHOW archive_mode')"
fi

log "creating stanza $stanza and checking that WAL reaches the repository"
pgb stanza-create >/dev/null
pgb check >/dev/null
if [ -n "$first_backup" ] && ! pgb info --output=json | grep -q '"label"'; then
  log "no backup yet: taking the first full backup"
  pgb --type=full backup >/dev/null
fi
if [ -n "$cron" ]; then
  log "installing /etc/cron.d/ecommerce-backups"
  sed -e "s|--config=/etc/pgbackrest/pgbackrest.conf|--config=$config|g" -e "s|--stanza=ecommerce|--stanza=$stanza|g" \
    "$ROOT/deploy/cron/ecommerce-backups" >/etc/cron.d/ecommerce-backups
  chmod 644 /etc/cron.d/ecommerce-backups
  command -v cron >/dev/null || log "warning: cron is not installed (apt-get install cron); the schedule will not run"
fi
pgb info
