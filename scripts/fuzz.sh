#!/bin/sh
# Run every libFuzzer target in build-fuzz/ for N seconds each, on a copy of its seed corpus.
# Usage: scripts/fuzz.sh SECONDS. Fails on the first crash (the reproducer is kept).
set -e
secs=${1:-60}
work=${TMPDIR:-/tmp}/postel-fuzz.$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
status=0
for bin in build-fuzz/fuzz_*; do
    name=${bin#build-fuzz/fuzz_}
    seed=tests/fuzz/corpus/$name
    mkdir -p "$work/$name"
    [ -d "$seed" ] && cp -r "$seed/." "$work/$name/"
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=tests/fuzz/crash-"$name"- -print_final_stats=0 "$work/$name" \
        > "$work/$name.log" 2>&1; then
        echo "fuzz: $name FAILED; log tail:"
        tail -n 40 "$work/$name.log"
        status=1
    else
        grep -E '^Done|#[0-9]+.*DONE' "$work/$name.log" | tail -n 1 || true
    fi
done
exit $status
