#!/usr/bin/env bash
# The project's test command (README, "Set up" step 2), and exactly what CI
# runs through .ci/run: formatting, lints, every test (doc tests included),
# then each cargo-fuzz target for a bounded time.
#
#   bash scripts/test.sh                  # everything, 60 s per fuzz target
#   FUZZ_SECONDS=10 bash scripts/test.sh  # shorter fuzzing
#   FUZZ_SECONDS=0 bash scripts/test.sh   # skip fuzzing
#
# Needs: a Rust toolchain with rustfmt and clippy, cargo-fuzz and a C++
# compiler for fuzzing (.ci/run installs them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

stage() {
    printf '\n==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"
}

stage "fmt: cargo fmt --all --check"
cargo fmt --all --check

stage "clippy: cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

stage "test: cargo test --workspace (unit, integration and doc tests)"
cargo test --workspace

if [[ "$FUZZ_SECONDS" == 0 ]]; then
    stage "fuzz: skipped (FUZZ_SECONDS=0)"
    stage "all checks passed (fuzzing skipped)"
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked (or run .ci/run)" >&2
    exit 1
fi

# cargo-fuzz needs nightly-only rustc flags (sanitizers); RUSTC_BOOTSTRAP lets
# the stable toolchain accept them, so no second toolchain is required.
export RUSTC_BOOTSTRAP=1

# libFuzzer adds new inputs to the first corpus directory it is given: use a
# scratch one, and only read the committed seeds in fuzz/corpus/<target>.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd fuzz
mapfile -t targets < <(cargo fuzz list)
if ((${#targets[@]} == 0)); then
    echo "cargo fuzz list found no targets" >&2
    exit 1
fi

stage "fuzz: building ${#targets[@]} targets (${targets[*]})"
cargo fuzz build

summary=()
for target in "${targets[@]}"; do
    stage "fuzz: ${target} for ${FUZZ_SECONDS}s"
    corpora=("$scratch/$target")
    mkdir -p "${corpora[0]}"
    if [[ -d "corpus/$target" ]]; then
        corpora+=("corpus/$target")
    fi
    log="$scratch/$target.log"
    # A crash, leak, timeout or OOM makes cargo fuzz fail, and so this script;
    # the reproducer is saved under fuzz/artifacts/<target>/.
    if ! cargo fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 2>&1 | tee "$log"; then
        echo "fuzz target ${target} failed; reproducer under fuzz/artifacts/${target}/" >&2
        exit 1
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    summary+=("${target}: ${runs:-?} runs, ${rate:-?} exec/s, no crash")
done

stage "fuzz summary"
printf '    %s\n' "${summary[@]}"
stage "all checks passed"
