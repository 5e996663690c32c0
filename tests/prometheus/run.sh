#!/usr/bin/env bash
# ctest case prometheus.rules: promtool checks the alert rules and the Prometheus config, runs the alert unit tests
# (tests/prometheus/*.test.yml), and every alert is checked for `for`, a severity, a summary, a description and a
# runbook_url whose anchor is a heading of docs/operations.md. Exits non-zero, naming each failed step.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
promtool="${PROMTOOL:-promtool}"
command -v "$promtool" >/dev/null || { echo "run.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }

failed=()
step() {  # name, command…
  local name="$1"; shift
  echo "== $name: $*"
  if ! "$@"; then
    failed+=("$name")
    echo "-- FAILED: $name" >&2
  fi
}

step "check rules" "$promtool" check rules deploy/prometheus/alerts.yml
step "test rules" "$promtool" test rules tests/prometheus/*.test.yml
# Rule paths in prometheus.yml are relative to the file, so the config is checked where it lies.
step "check config" "$promtool" check config deploy/prometheus/prometheus.yml

alert_fields() {
  /usr/bin/python3 - deploy/prometheus/alerts.yml docs/operations.md <<'EOF'
import re, sys, yaml

rules_path, runbook_path = sys.argv[1], sys.argv[2]
with open(runbook_path, encoding="utf-8") as f:
    # GitHub's anchors: lower case, punctuation dropped, spaces to dashes.
    anchors = {re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
               for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", f.read(), re.M)}
with open(rules_path, encoding="utf-8") as f:
    groups = yaml.safe_load(f)["groups"]
problems, count = [], 0
for group in groups:
    for rule in group["rules"]:
        if "alert" not in rule:
            continue
        count += 1
        name = rule["alert"]
        if not rule.get("for"):
            problems.append(f"{name}: no `for`")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{name}: severity label must be critical, warning or info, got "
                            f"{rule.get('labels', {}).get('severity')!r}")
        notes = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not notes.get(key):
                problems.append(f"{name}: no `{key}` annotation")
        url = notes.get("runbook_url", "")
        page, _, anchor = url.partition("#")
        if page != "docs/operations.md" or anchor not in anchors:
            problems.append(f"{name}: runbook_url {url!r} is not a heading of {runbook_path} "
                            f"(expected docs/operations.md#{name.lower()})")
for p in problems:
    print(p, file=sys.stderr)
print(f"{count} alerts, {len(problems)} problems")
sys.exit(1 if problems or count == 0 else 0)
EOF
}
step "alert annotations and runbook anchors" alert_fields

if ((${#failed[@]})); then
  echo "prometheus rules: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "prometheus rules: all checks passed"
