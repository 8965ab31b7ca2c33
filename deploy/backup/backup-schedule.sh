#!/usr/bin/env bash
# The compose stack's backup schedule (service postgres-backup): creates each stanza,
# takes a full backup when a stanza has none, then every day at BACKUP_AT (UTC, default
# 01:30) a full backup on BACKUP_FULL_WEEKDAY (1-7, Monday=1; default 7, Sunday) and a
# differential backup on the other days, then expire (retention: pgbackrest.conf).
# Verifies the repository weekly after the full backup. Logs to stdout (docker logs).
set -uo pipefail
stanzas=${BACKUP_STANZAS:-customer order gateway}
at=${BACKUP_AT:-01:30}
full_day=${BACKUP_FULL_WEEKDAY:-7}
pgb() { pgbackrest --stanza="$1" "${@:2}"; }
for s in $stanzas; do
  until pgb "$s" stanza-create; do echo "waiting for stanza $s's PostgreSQL"; sleep 10; done
  pgb "$s" info --output=json | grep -q '"label"' || pgb "$s" --type=full backup
done
while true; do
  now=$(date -u +%s)
  next=$(date -u -d "today $at" +%s)
  [ "$next" -gt "$now" ] || next=$(date -u -d "tomorrow $at" +%s)
  sleep $((next - now))
  if [ "$(date -u +%u)" = "$full_day" ]; then type=full; else type=diff; fi
  for s in $stanzas; do
    pgb "$s" --type="$type" backup || echo "backup of stanza $s failed" >&2
    pgb "$s" expire || echo "expire of stanza $s failed" >&2
    [ "$type" = diff ] || pgb "$s" verify || echo "verify of stanza $s failed" >&2
  done
done
