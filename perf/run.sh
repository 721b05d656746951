#!/usr/bin/env bash
# The data-plane benchmark, one command: builds in release, installs the
# load generator if missing, then runs `mesh-bench dataplane`, which starts
# the upstream, pilot and both sidecar pairs, measures and reports
# (docs/performance.md).
#
#   perf/run.sh [--smoke] [--duration SECS] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: perf/run.sh [--smoke] [--duration SECS] [--out DIR]" >&2
    exit 2
}

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) args+=(--smoke); shift ;;
        --duration) [ $# -ge 2 ] || usage; args+=(--duration "$2"); shift 2 ;;
        --out) [ $# -ge 2 ] || usage; args+=(--out "$2"); shift 2 ;;
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

if ! oha --version >/dev/null 2>&1; then
    echo "== installing oha"
    cargo install oha --locked
fi
oha --version

exec target/release/mesh-bench dataplane "${args[@]}"
