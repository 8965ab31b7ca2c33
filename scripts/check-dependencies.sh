#!/usr/bin/env bash
# Checks the workspace's dependency graph with cargo deny against deny.toml: RustSec
# advisories (vulnerable, unsound, unmaintained and yanked crates), banned crates,
# licences and sources. The advisories come from the machine's snapshot of the RustSec
# database (../shared/advisory-db beside the clone, or ADVISORY_SNAPSHOT) when there is
# one, read offline; otherwise from the live database, fetched. Exits non-zero on any
# finding deny.toml does not explain. scripts/test.sh runs it as a step.
#
# Usage: scripts/check-dependencies.sh
# Installs cargo-deny (pinned, cargo install) when it is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

ensure_cargo_deny
ensure_advisory_db
# cargo-deny reads the crates of every target platform, not only this machine's: fetch
# the ones a build here never downloaded (nothing when they are all there).
cargo fetch --locked --quiet
if [ -n "$ADVISORY_OFFLINE" ]; then
  log "cargo deny against the advisory snapshot $(cat "$ADVISORY_SNAPSHOT/SNAPSHOT" 2>/dev/null || echo "$ADVISORY_SNAPSHOT")"
  cargo deny --offline check advisories bans licenses sources
else
  log "cargo deny against the live advisory database"
  cargo deny check advisories bans licenses sources
fi
