#!/usr/bin/env bash
# Builds Herald (Release with debug info) and runs one node. Extra arguments go to herald, e.g. --listen 127.0.0.1:9000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release -DHERALD_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release -j"$(nproc)" --target herald
echo "herald built: build/release/herald  (WebSocket: ws://HOST:PORT/ws, metrics: http://HOST:PORT/metrics)"
exec build/release/herald "$@"
