#!/usr/bin/env bash
# Replays a dead-letter topic to the topics its records came from, exactly once per
# record (the runbook, section 5.1, step 5):
#   ./manual-tests/replay-dlq.sh orders.created.dlq
#   ./manual-tests/replay-dlq.sh orders.created.dlq --dry-run
#   ./manual-tests/replay-dlq.sh orders.created.dlq --filter key=<order-id>
# Every argument after the topic goes to `opsctl dlq replay` (see its --help): --dry-run,
# --filter key=<k>|error=<substring>|original-offset=<n>, --group, --json. The broker
# comes from OPSCTL_KAFKA_BOOTSTRAP_SERVERS or KAFKA_BOOTSTRAP_SERVERS (default
# 127.0.0.1:9092). Uses a built opsctl ($OPSCTL, $CARGO_TARGET_DIR/release or debug,
# or opsctl on PATH), else builds and runs it with cargo.
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0 || exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
topic=$1
shift
case "$topic" in
  *.dlq) ;;
  *) echo "warning: '$topic' does not end in .dlq; replaying it anyway" >&2 ;;
esac
target=${CARGO_TARGET_DIR:-$root/target}
for candidate in "${OPSCTL:-}" "$target/release/opsctl" "$target/debug/opsctl" "$(command -v opsctl || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    exec "$candidate" dlq replay "$topic" "$@"
  fi
done
cd "$root"
exec cargo run -q -p opsctl -- dlq replay "$topic" "$@"
