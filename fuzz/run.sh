#!/usr/bin/env bash
# Runs every fuzz target for a while; fails if any of them finds a crash.
#
#   bash fuzz/run.sh [SECONDS]     (default: $FUZZ_SECONDS, else 60)
#
# Works on the stable toolchain: cargo-fuzz needs a few nightly-only rustc
# flags (-Zsanitizer, sanitizer coverage), which RUSTC_BOOTSTRAP=1 allows.
# FUZZ_TOOLCHAIN (default stable) and FUZZ_SANITIZER (default address;
# `none` is faster) change how the targets are built. Seeds come from
# fuzz/corpus/TARGET and are never written to; what the fuzzer finds goes
# to fuzz/work/TARGET (kept between runs) and crashes to
# fuzz/artifacts/TARGET. Needs a C++ compiler for libFuzzer.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-${FUZZ_SECONDS:-60}}"
toolchain="${FUZZ_TOOLCHAIN:-stable}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=(yaml_config sniff xds_convert http_router)

PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo "+$toolchain" install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

echo "== fuzz: building ${targets[*]} ($toolchain, sanitizer $sanitizer)"
cargo "+$toolchain" fuzz build --sanitizer "$sanitizer"

failed=()
for target in "${targets[@]}"; do
    echo "== fuzz: $target for ${seconds}s"
    mkdir -p "work/$target"
    # -timeout: an input that takes 10 s is a denial of service, a bug too.
    if ! cargo "+$toolchain" fuzz run --sanitizer "$sanitizer" "$target" \
        "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
        echo "== fuzz: $target FAILED; the input is in fuzz/artifacts/$target/"
    fi
done

if ((${#failed[@]})); then
    echo "== fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "== fuzz: all targets clean for ${seconds}s each"
