#!/usr/bin/env bash
# The benchmark suite, one command: builds in release, installs the load
# generator if missing, then runs `mesh-bench dataplane` (the upstream,
# pilot and both sidecar pairs, side by side) and the pilot scale harness
# `pilot-scale` (N services, M simulated sidecars, state of the world and
# delta), and reports (docs/performance.md).
#
#   perf/run.sh [--smoke] [--duration SECS] [--out DIR] [--only dataplane|pilot]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: perf/run.sh [--smoke] [--duration SECS] [--out DIR] [--only dataplane|pilot]" >&2
    exit 2
}

args=()
smoke=false
only=""
out=perf/out
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) args+=(--smoke); smoke=true; shift ;;
        --duration) [ $# -ge 2 ] || usage; args+=(--duration "$2"); shift 2 ;;
        --out) [ $# -ge 2 ] || usage; args+=(--out "$2"); out="$2"; shift 2 ;;
        --only) [ $# -ge 2 ] || usage; only="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

export PATH="$HOME/.cargo/bin:$PATH"
for tool in taskset cargo; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (taskset: util-linux)" >&2; exit 1; }
done

echo "== building (release)"
cargo build --release -p mesh-pilot -p mesh-proxy -p mesh-perf --bins

if [ "$only" != pilot ]; then
    if ! oha --version >/dev/null 2>&1; then
        echo "== installing oha"
        cargo install oha --locked
    fi
    oha --version
fi

if [ "$only" != pilot ]; then
    echo "== data plane"
    target/release/mesh-bench dataplane "${args[@]}"
fi

if [ "$only" != dataplane ]; then
    # (services, proxies): a few seconds each in smoke mode; the issue's
    # sizes otherwise (5,000 x 5,000 is left out: about 60 GB of xDS on a
    # 2-core machine, see docs/performance.md).
    if $smoke; then sizes="50:20"; else sizes="100:100 1000:2000"; fi
    mkdir -p "$out"
    for size in $sizes; do
        for protocol in sotw delta; do
            flag=""; [ "$protocol" = delta ] && flag=--delta
            echo "== pilot scale: ${size%%:*} services, ${size##*:} sidecars, $protocol"
            target/release/pilot-scale --services "${size%%:*}" --proxies "${size##*:}" $flag \
                --json "$out/pilot-${size%%:*}x${size##*:}-$protocol-$(date +%s).json"
        done
    done
fi
