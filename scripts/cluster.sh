#!/usr/bin/env bash
# Runs a Herald cluster on one machine without Docker: redis-server (AOF on), three herald nodes and HAProxy with
# deploy/haproxy.cfg, all on loopback. The cluster tests use this same script.
#
#   scripts/cluster.sh up   [--base-port 18080] [--dir /tmp/herald-cluster] [--binary build/release/herald] [-- herald flags…]
#   scripts/cluster.sh down [--dir /tmp/herald-cluster]
#
# Ports: HAProxy on BASE, nodes on BASE+1..BASE+3, Redis on BASE+9. Each process's pid is in DIR/<name>.pid and its
# log in DIR/<name>.log. `up` returns once every node answers /readyz and HAProxy forwards to them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
action="${1:-}"; shift || true
base=18080
dir=/tmp/herald-cluster
binary="$root/build/release/herald"
extra=()
while (($#)); do
  case "$1" in
    --base-port) base="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

running() {  # pid — alive and not a zombie waiting for a parent to reap it
  local state; state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

stop_pid() {  # name
  local f="$dir/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

wait_http() {  # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; do
    if ((SECONDS >= deadline)); then echo "cluster.sh: $1 not ready after $2 s" >&2; return 1; fi
    sleep 0.1
  done
}

case "$action" in
  up)
    command -v redis-server >/dev/null && command -v haproxy >/dev/null || {
      echo "cluster.sh: needs redis-server and haproxy (apt-get install redis-server haproxy)" >&2; exit 1; }
    [ -x "$binary" ] || { echo "cluster.sh: no herald binary at $binary (run scripts/run.sh or cmake --build)" >&2; exit 1; }
    mkdir -p "$dir"
    redis_port=$((base + 9))
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
      --save "" --daemonize no --logfile "$dir/redis.log" &
    echo $! > "$dir/redis.pid"
    for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    for i in 1 2 3; do
      "$binary" --listen "127.0.0.1:$((base + i))" --node-name "node$i" --redis "redis://127.0.0.1:$redis_port" \
        "${extra[@]}" 2>"$dir/node$i.log" &
      echo $! > "$dir/node$i.pid"
    done
    for i in 1 2 3; do wait_http "http://127.0.0.1:$((base + i))/readyz" 20; done
    HERALD_LB_BIND="127.0.0.1:$base" HERALD_NODE1="127.0.0.1:$((base + 1))" HERALD_NODE2="127.0.0.1:$((base + 2))" \
      HERALD_NODE3="127.0.0.1:$((base + 3))" haproxy -f "$root/deploy/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
    echo $! > "$dir/haproxy.pid"
    wait_http "http://127.0.0.1:$base/readyz" 20
    echo "cluster up: ws://127.0.0.1:$base/ws (nodes 127.0.0.1:$((base + 1))-$((base + 3)), redis 127.0.0.1:$redis_port, logs in $dir)"
    ;;
  down)
    for name in haproxy node1 node2 node3 redis; do stop_pid "$name"; done
    echo "cluster down"
    ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
