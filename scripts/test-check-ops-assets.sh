#!/usr/bin/env bash
# Shows that scripts/check-ops-assets.sh catches the deployment mistakes it is there for:
# it runs the checks against a copy of the repository's files broken in several ways
# at once, and asserts that each mistake is reported (one FAIL line each) and that the
# run fails. The mistakes:
#   - a typo'd field in a Deployment (readOnlyRootFileSystem): kubernetes-validate --strict
#   - customer-facing-service published on every interface (0.0.0.0:8080)
#   - PAYMENT_GATEWAY_ADMIN_TOKEN missing from the `kubectl create secret` instructions
#   - RUST_LOG handed to a service (compose) and put in a service's ConfigMap: no binary reads it
#   - the gateway's required PAYMENT_GATEWAY_SERVICE_TOKEN no longer set by compose
#   - a top-level `name:` in docker-compose.yml (Debian's docker-compose 1.29 rejects it)
#   - a `# syntax=` line and a `cd` in a RUN (hadolint DL3003) in the Dockerfile
#   - no .dockerignore
# Run by scripts/test.sh after the checks themselves; passes CHECK_OPS_BIN_DIR and
# CHECK_OPS_REQUIRE_BINARIES through. Ends with "N passed, M failed".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copy="$work/repo"
mkdir -p "$copy"
for f in infrastructure deploy docs specs docker-compose.yml Dockerfile .env.example .hadolint.yaml; do
  cp -a "$root/$f" "$copy/"
done

# ---------------------------------------------------------------- the mistakes
sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' "$copy/deploy/k8s/payment-gateway/deployment.yaml"
sed -i 's/"127.0.0.1:8080:8080"/"0.0.0.0:8080:8080"/' "$copy/docker-compose.yml"
sed -i '/--from-literal=PAYMENT_GATEWAY_ADMIN_TOKEN=/d' "$copy/deploy/k8s/kustomization.yaml"
sed -i 's/^      CUSTOMER_SERVICE_LOG_LEVEL: \(.*\)$/      CUSTOMER_SERVICE_LOG_LEVEL: \1\n      RUST_LOG: info/' "$copy/docker-compose.yml"
sed -i 's/^  CUSTOMER_SERVICE_LOG_LEVEL: \(.*\)$/  CUSTOMER_SERVICE_LOG_LEVEL: \1\n  RUST_LOG: info/' "$copy/deploy/k8s/customer-facing-service/configmap.yaml"
sed -i '/^      PAYMENT_GATEWAY_SERVICE_TOKEN: /d' "$copy/docker-compose.yml"
sed -i '0,/^services:/s//name: ecommerce-platform\n\nservices:/' "$copy/docker-compose.yml"
sed -i '1i # syntax=docker/dockerfile:1.7' "$copy/Dockerfile"
sed -i 's/^WORKDIR \/src$/WORKDIR \/src\nRUN cd \/src \&\& true/' "$copy/Dockerfile"

out="$work/out"
set +e
CHECK_OPS_ROOT="$copy" bash "$root/scripts/check-ops-assets.sh" >"$out" 2>&1
status=$?
set -e

passed=0 failed=0
expect() { # description, extended regex a FAIL line must match
  if grep -Eq -- "^FAIL .*($2)" "$out"; then
    passed=$((passed + 1))
    echo "  ok    $1"
  else
    failed=$((failed + 1))
    echo "  MISS  $1 (no FAIL line matching: $2)"
  fi
}

expect "typo'd Deployment field" "does not validate against Kubernetes 1\.29\.0 .*readOnlyRootFileSystem"
expect "typo'd field, newest supported version" "does not validate against Kubernetes 1\.37\.0"
expect "compose publishes on 0.0.0.0" "customer-facing-service: publishes port 8080 on 0\.0\.0\.0"
expect "secret key missing from kubectl create secret" "platform-secrets/PAYMENT_GATEWAY_ADMIN_TOKEN is missing from the .kubectl create secret. instructions"
expect "compose hands RUST_LOG to a service" "docker-compose.yml customer-facing-service: sets RUST_LOG, which customer-facing-service does not read"
expect "a ConfigMap sets RUST_LOG" "Deployment customer-facing-service: sets RUST_LOG, which customer-facing-service does not read"
expect "a required variable not set" "docker-compose.yml payment-gateway: does not set .*PAYMENT_GATEWAY_SERVICE_TOKEN.*, which payment-gateway requires"
expect "top-level name: in compose" "top-level .name:., which Debian's docker-compose 1\.29 rejects"
expect "docker-compose 1.29 refuses the file" "docker-compose config \(with .env.example as .env\)"
expect "syntax line in the Dockerfile" "Dockerfile: has a .# syntax=. line"
expect "hadolint finding" "Dockerfile: hadolint: .*DL3003"
expect ".dockerignore missing" "\.dockerignore: is missing"
if [ "$status" -ne 0 ]; then
  passed=$((passed + 1)); echo "  ok    the run fails (exit $status)"
else
  failed=$((failed + 1)); echo "  MISS  the run exited 0 on broken files"
fi
if [ "$failed" -gt 0 ]; then
  echo "--- check-ops-assets.sh on the broken copy said:"
  cat "$out"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
