#!/usr/bin/env bash
# The project's test command (README, "Set up" step 2), and exactly what CI
# runs through .ci/run. On a fresh Debian machine with only a Rust toolchain
# it first installs what the tests need, then runs: formatting, lints,
# `cargo deny`, every test (doc tests included), and each cargo-fuzz target
# for a bounded time. It ends with a summary that names every skipped test
# and every skipped check, so a green run cannot hide one.
#
#   bash scripts/test.sh                  # everything, 60 s per fuzz target
#   FUZZ_SECONDS=10 bash scripts/test.sh  # shorter fuzzing
#   FUZZ_SECONDS=0 bash scripts/test.sh   # skip fuzzing (and its C++ compiler and cargo-fuzz)
#
# What it installs, only when missing:
#   - Debian packages `etcd-server` (the discovery tests run a real etcd;
#     not needed with GOSSAMER_SKIP_ETCD=1 or an etcd on $GOSSAMER_ETCD_BIN /
#     $PATH) and `g++` (libfuzzer-sys compiles libFuzzer), through apt-get,
#     with sudo when not root;
#   - the rustup components rustfmt and clippy;
#   - cargo-deny and cargo-fuzz (`cargo install --locked`, pinned versions).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
CARGO_DENY_VERSION="0.20.2"
CARGO_FUZZ_VERSION="0.13.2"

started="$(date +%s)"

stage() {
    printf '\n==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"
}

die() {
    printf '\nscripts/test.sh: %s\n' "$*" >&2
    exit 1
}

# Scratch space: the skip log, cargo-deny's and libFuzzer's output, and the
# fuzzers' scratch corpora (libFuzzer adds new inputs to the first corpus
# directory it is given; the committed seeds in fuzz/corpus stay read-only).
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Lines of the final summary, besides the skipped tests.
summary=()

# ---------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------

have_etcd() {
    [[ -n "${GOSSAMER_ETCD_BIN:-}" && -x "${GOSSAMER_ETCD_BIN}" ]] || [[ -x /usr/bin/etcd ]] || command -v etcd >/dev/null 2>&1
}

install_system_packages() {
    local missing=()
    if [[ "${GOSSAMER_SKIP_ETCD:-}" != 1 ]] && ! have_etcd; then
        missing+=(etcd-server)
    fi
    if [[ "$FUZZ_SECONDS" != 0 ]] && ! command -v c++ >/dev/null 2>&1; then
        missing+=(g++)
    fi
    if ((${#missing[@]} == 0)); then
        stage "set-up: system packages present (etcd, C++ compiler)"
        return
    fi
    local hint="install ${missing[*]} yourself (an etcd binary on \$PATH or \$GOSSAMER_ETCD_BIN will do; GOSSAMER_SKIP_ETCD=1 skips the etcd tests, FUZZ_SECONDS=0 the fuzzing)"
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing ${missing[*]} and no apt-get here: $hint"
    fi
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            die "missing ${missing[*]}: installing needs root, and sudo is absent: run as root, or $hint"
        fi
        sudo=(sudo)
    fi
    stage "set-up: installing ${missing[*]} (apt-get${sudo[*]:+ through sudo})"
    if ! "${sudo[@]+"${sudo[@]}"}" apt-get update \
        || ! DEBIAN_FRONTEND=noninteractive "${sudo[@]+"${sudo[@]}"}" \
            apt-get install -y --no-install-recommends "${missing[@]}"; then
        die "apt-get could not install ${missing[*]}: $hint"
    fi
}

install_rust_tools() {
    local component
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null 2>&1 || die "cargo ${component/rustfmt/fmt} is missing and there is no rustup to add it"
            stage "set-up: rustup component add ${component}"
            rustup component add "$component"
        fi
    done
    if ! cargo deny --version >/dev/null 2>&1; then
        stage "set-up: cargo install --locked cargo-deny@${CARGO_DENY_VERSION} (a few minutes, once)"
        cargo install --locked "cargo-deny@${CARGO_DENY_VERSION}"
    fi
    if [[ "$FUZZ_SECONDS" != 0 ]] && ! cargo fuzz --version >/dev/null 2>&1; then
        stage "set-up: cargo install --locked cargo-fuzz@${CARGO_FUZZ_VERSION} (a minute or two, once)"
        cargo install --locked "cargo-fuzz@${CARGO_FUZZ_VERSION}"
    fi
    local tools
    tools="$(rustc --version), $(cargo deny --version)"
    if [[ "$FUZZ_SECONDS" != 0 ]]; then
        tools+=", $(cargo fuzz --version)"
    fi
    stage "set-up: ${tools}"
}

install_system_packages
install_rust_tools

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

stage "fmt: cargo fmt --all --check"
cargo fmt --all --check
summary+=("fmt: clean")

stage "clippy: cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
summary+=("clippy: clean")

# Advisories need the RustSec database, which cargo-deny fetches from GitHub.
# Without it (offline, or GitHub unreachable) the advisory check is skipped
# and the summary says so; licenses, bans and sources need no network.
stage "deny: cargo deny check (deny.toml)"
# cargo-deny reads the metadata of every package in Cargo.lock, those of
# other platforms too (windows-sys...), which a build here never downloads:
# fetch them all first, or `--offline` fails on a machine with a cold cache.
cargo fetch --locked
# (Bounded: a network that drops packets instead of refusing would hang git.)
if timeout 300 cargo deny fetch db >"$scratch/deny-fetch.log" 2>&1; then
    cargo deny --offline check advisories licenses bans sources
    summary+=("cargo deny: advisories, licenses, bans, sources ok")
else
    reason="$(grep -m1 '^fatal: ' "$scratch/deny-fetch.log" || grep -m1 -i 'error' "$scratch/deny-fetch.log" \
        || tail -n1 "$scratch/deny-fetch.log" | grep . || echo "no answer within 300 s")"
    echo "the advisory database cannot be fetched: ${reason}" >&2
    echo "checking licenses, bans and sources only; advisories are SKIPPED" >&2
    cargo deny --offline check licenses bans sources
    summary+=("cargo deny: licenses, bans, sources ok; advisories SKIPPED (advisory database unreachable: ${reason})")
fi

# Tests that cannot run here (network namespaces need root, IPv6 loopback,
# etcd with GOSSAMER_SKIP_ETCD=1) pass early through gossamer_testkit's
# skip(), which appends "package/binary::test<TAB>reason" to this file.
export GOSSAMER_SKIP_LOG="$scratch/skipped-tests"
: >"$GOSSAMER_SKIP_LOG"

print_summary() {
    stage "summary ($(( ($(date +%s) - started) / 60 )) min)"
    printf '    %s\n' "${summary[@]}"
    local skipped
    skipped="$(sort -u "$GOSSAMER_SKIP_LOG" | grep -c . || true)"
    if ((skipped == 0)); then
        printf '    0 tests skipped\n'
    else
        printf '    %s tests skipped:\n' "$skipped"
        sort -u "$GOSSAMER_SKIP_LOG" | while IFS=$'\t' read -r name reason; do
            printf '        %s: %s\n' "$name" "$reason"
        done
    fi
}

# --no-fail-fast: every test binary runs, so one failure does not hide
# another (or the skipped tests after it); cargo lists all failures at the end.
stage "test: cargo test --workspace --no-fail-fast (unit, integration and doc tests)"
if ! cargo test --workspace --no-fail-fast; then
    summary+=("tests: FAILED (the failures are listed just above)")
    print_summary
    die "tests failed"
fi
summary+=("tests: passed")

if [[ "$FUZZ_SECONDS" == 0 ]]; then
    summary+=("fuzz: SKIPPED (FUZZ_SECONDS=0)")
    print_summary
    stage "all checks passed (fuzzing skipped)"
    exit 0
fi

# cargo-fuzz needs nightly-only rustc flags (sanitizers); RUSTC_BOOTSTRAP lets
# the stable toolchain accept them, so no second toolchain is required.
export RUSTC_BOOTSTRAP=1

cd fuzz
mapfile -t targets < <(cargo fuzz list)
if ((${#targets[@]} == 0)); then
    die "cargo fuzz list found no targets"
fi

stage "fuzz: building ${#targets[@]} targets (${targets[*]})"
cargo fuzz build

for target in "${targets[@]}"; do
    stage "fuzz: ${target} for ${FUZZ_SECONDS}s"
    corpora=("$scratch/fuzz-$target")
    mkdir -p "${corpora[0]}"
    if [[ -d "corpus/$target" ]]; then
        corpora+=("corpus/$target")
    fi
    log="$scratch/fuzz-$target.log"
    # A crash, leak, timeout or OOM makes cargo fuzz fail, and so this script;
    # the reproducer is saved under fuzz/artifacts/<target>/.
    if ! cargo fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 2>&1 | tee "$log"; then
        die "fuzz target ${target} failed; reproducer under fuzz/artifacts/${target}/"
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    summary+=("fuzz ${target}: ${runs:-?} runs, ${rate:-?} exec/s, no crash")
done

print_summary
stage "all checks passed"
