#!/usr/bin/env bash
# Mass join (issue #16, "joins without a cliff"): N real nodes on loopback in
# one process, all joining one seed at once; prints the example's report and
# /usr/bin/time -v's wall clock, CPU and peak RSS for each N.
#   scripts/mass_join.sh            # 128 1000 2000
#   scripts/mass_join.sh 128 500    # chosen sizes
#   EXTRA="--spread 1" scripts/mass_join.sh 1000   # one loopback address per node
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p gossamer --example mass_join
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(128 1000 2000)
ulimit -n "$(ulimit -Hn)" || true
for n in "${sizes[@]}"; do
    echo "== $n nodes"
    # shellcheck disable=SC2086
    /usr/bin/time -v target/release/examples/mass_join --nodes "$n" --deadline 120 ${EXTRA:-} 2>&1 |
        grep -E '^mass_join|^  |User time|System time|Elapsed|Maximum resident' || true
done
