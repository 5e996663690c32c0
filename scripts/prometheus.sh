#!/usr/bin/env bash
# Runs Debian's prometheus on loopback against a scripts/cluster.sh cluster, with a config derived from
# deploy/prometheus/prometheus.yml (same job and alert rules; only the targets and intervals differ). The live
# dashboard test (tests/integration/test_prometheus_live.py) uses this same script.
#
#   scripts/prometheus.sh up     [--base-port 18080] [--dir /tmp/herald-cluster] [--port 9090] [--interval 15s]
#   scripts/prometheus.sh down   [--dir /tmp/herald-cluster]
#   scripts/prometheus.sh config [--base-port 18080] [--interval 15s]     (prints the derived config)
#
# Targets are the nodes of `cluster.sh up --base-port BASE`: 127.0.0.1:BASE+1..BASE+3. Prometheus listens on
# 127.0.0.1:PORT; its config, data, log and pid are DIR/prometheus.yml, DIR/prometheus-data, DIR/prometheus.log and
# DIR/prometheus.pid. `up` returns once Prometheus answers /-/ready.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
action="${1:-}"; shift || true
base=18080
dir=/tmp/herald-cluster
port=9090
interval=15s
while (($#)); do
  case "$1" in
    --base-port) base="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    *) echo "prometheus.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

running() {  # pid — alive and not a zombie
  local state; state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# The repository's config with only the herald job's targets and the intervals replaced; rule files become absolute
# so the copy can live anywhere.
derive_config() {
  /usr/bin/python3 - "$root/deploy/prometheus/prometheus.yml" "$interval" \
    "127.0.0.1:$((base + 1))" "127.0.0.1:$((base + 2))" "127.0.0.1:$((base + 3))" <<'EOF'
import os, sys, yaml

source, interval, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(source) as f:
    config = yaml.safe_load(f)
here = os.path.dirname(os.path.abspath(source))
config.setdefault("global", {}).update(scrape_interval=interval, evaluation_interval=interval,
                                       scrape_timeout=interval)
config["rule_files"] = [os.path.join(here, p) for p in config.get("rule_files", [])]
jobs = [j for j in config.get("scrape_configs", []) if j.get("job_name") == "herald"]
if len(jobs) != 1:
    sys.exit(f"prometheus.sh: {source} must have exactly one scrape job named herald, found {len(jobs)}")
jobs[0]["static_configs"] = [{"targets": targets}]
yaml.safe_dump(config, sys.stdout, sort_keys=False)
EOF
}

case "$action" in
  config)
    derive_config
    ;;
  up)
    command -v prometheus >/dev/null || {
      echo "prometheus.sh: needs Debian's prometheus (apt-get install prometheus)" >&2; exit 1; }
    mkdir -p "$dir"
    if [ -f "$dir/prometheus.pid" ] && running "$(cat "$dir/prometheus.pid")"; then
      echo "prometheus.sh: already running (pid $(cat "$dir/prometheus.pid")); run down first" >&2; exit 1
    fi
    derive_config > "$dir/prometheus.yml"
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
      --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=1d \
      </dev/null >"$dir/prometheus.log" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/prometheus.pid"
    deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/-/ready" 2>/dev/null; do
      if ! running "$pid" || ((SECONDS >= deadline)); then
        echo "prometheus.sh: prometheus (pid $pid) not ready on 127.0.0.1:$port; log tail:" >&2
        tail -n 20 "$dir/prometheus.log" >&2
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/prometheus.pid"
        exit 1
      fi
      sleep 0.1
    done
    echo "prometheus up: http://127.0.0.1:$port (scraping 127.0.0.1:$((base + 1))-$((base + 3)) every $interval, log $dir/prometheus.log)"
    ;;
  down)
    f="$dir/prometheus.pid"
    if [ -f "$f" ]; then
      pid="$(cat "$f")"
      if running "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
        running "$pid" && kill -KILL "$pid" 2>/dev/null || true
      fi
      rm -f "$f"
    fi
    echo "prometheus down"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
