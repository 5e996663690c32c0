#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build/fuzz) and runs each for N seconds, starting from the seed corpus in
# tests/fuzz/corpus/<target>/. New inputs go to a temporary directory, never into the repository; crash, leak and
# timeout inputs go to build/fuzz/artifacts/<target>/. Exits non-zero if any target fails.
#
#   tests/fuzz/run.sh [-t SECONDS] [target...]     (default: 30 s each, every target, one after the other)
#
# Environment: CXX (default clang++-14), FUZZ_BUILD_DIR (default build/fuzz), FUZZ_KEEP_CORPUS=1 to keep the
# temporary corpus directories (their paths are printed), FUZZ_ARGS for extra libFuzzer flags (e.g. -fork=4).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"
cxx="${CXX:-clang++-14}"
seconds=30

while getopts "t:h" opt; do
    case "$opt" in
        t) seconds="$OPTARG" ;;
        *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

if ! command -v "$cxx" >/dev/null; then
    echo "run.sh: $cxx not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# One configure/build at a time in the shared build directory, should two runs start together.
mkdir -p "$build"
exec 9>"$build/.build-lock"
flock 9
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_COMPILER="$cxx" -DHERALD_FUZZ=ON -DHERALD_BUILD_BENCH=OFF
fi
cmake --build "$build" --target fuzz -j "$(nproc)"
flock -u 9
exec 9>&-

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for binary in "$build"/tests/fuzz/*_fuzz; do
        name="$(basename "$binary")"
        targets+=("${name%_fuzz}")
    done
fi

status=0
for target in "${targets[@]}"; do
    binary="$build/tests/fuzz/${target}_fuzz"
    seeds="$here/corpus/$target"
    if [[ ! -x "$binary" ]]; then
        echo "run.sh: no fuzz target $target ($binary)" >&2
        status=1
        continue
    fi
    artifacts="$build/artifacts/$target"
    mkdir -p "$artifacts"
    scratch="$(mktemp -d "${TMPDIR:-/tmp}/herald-fuzz-$target.XXXXXX")"
    echo "== $target: ${seconds}s, new inputs in $scratch, crashes in $artifacts/"
    # The first corpus directory receives new inputs; the seeds are only read.
    # shellcheck disable=SC2086
    if ! "$binary" "$scratch" "$seeds" \
        -max_total_time="$seconds" -close_fd_mask=3 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
        > "$build/artifacts/$target.log" 2>&1; then
        echo "!! $target FAILED — see $build/artifacts/$target.log and $artifacts/" >&2
        grep -E "^==[0-9]+==ERROR|invariant failed|^SUMMARY|Test unit written" "$build/artifacts/$target.log" >&2 || true
        status=1
    fi
    grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec" \
        "$build/artifacts/$target.log" | tail -3 || true
    if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then
        rm -rf "$scratch"
    fi
done
exit "$status"
