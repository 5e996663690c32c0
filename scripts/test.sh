#!/usr/bin/env bash
# Builds and runs the whole test suite: unit, integration, Prometheus-rule, SDK and browser tests on a release build,
# then the unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer, then the fuzzers.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs="$(nproc)"

echo "== deployment files"
docker-compose -f docker-compose.yml config -q
HERALD_LB_BIND=127.0.0.1:1 HERALD_NODE1=127.0.0.1:2 HERALD_NODE2=127.0.0.1:3 HERALD_NODE3=127.0.0.1:4 \
  haproxy -c -q -f deploy/haproxy.cfg

echo "== JavaScript dev dependencies (ws for the SDK tests, puppeteer-core for the browser test)"
npm ci --prefix sdk/js --no-audit --no-fund --loglevel=error
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

echo "== release build"
cmake --preset release -DHERALD_BUILD_TESTS=ON >/dev/null
cmake --build --preset release -j"$jobs"
echo "== unit and integration tests"
ctest --preset release -j"$jobs"

echo "== unit tests under ASan/UBSan"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --preset asan -j"$jobs"

echo "== fuzzing: each libFuzzer target for 30 s (clang-14)"
tests/fuzz/run.sh -t "${HERALD_FUZZ_SECONDS:-30}"
