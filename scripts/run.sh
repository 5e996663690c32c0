#!/usr/bin/env bash
# Builds Herald (Release with debug info) and runs one node. Extra arguments go to herald, e.g. --listen 127.0.0.1:9000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target herald

# The address the node will listen on, as herald resolves it (flag > HERALD_LISTEN > default), for the URLs below.
listen="${HERALD_LISTEN:-0.0.0.0:8080}"
demo=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --listen) listen="${args[i + 1]:-$listen}" ;;
    --listen=*) listen="${args[i]#--listen=}" ;;
    --no-demo) demo=0 ;;
  esac
done
host="${listen%:*}" port="${listen##*:}"
case "$host" in 0.0.0.0 | "[::]" | "") host=localhost ;; esac
echo "herald built: build/release/herald"
echo "  WebSocket: ws://$host:$port/ws   metrics: http://$host:$port/metrics   SDK: http://$host:$port/sdk/herald-client.js"
if ((demo)); then echo "  Demo: open http://$host:$port/demo/ in two browser tabs"; fi
exec build/release/herald "$@"
