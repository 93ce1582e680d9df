#!/usr/bin/env bash
# Failure detection sweep (issue #19): the settings of the suspicion
# timeout x cluster size x seeds, in the simulator (release build). Prints
# the tables behind BENCHMARKS.md's "Failure detection (issue #19)".
#
#   bash scripts/detection_sweep.sh            # the whole sweep (~10 min on 2 cores)
#   SEEDS=3 GATE_SEEDS=5 bash scripts/detection_sweep.sh   # quicker
#   JOBS=1 ...                                 # one simulation at a time
#
# Then the release-only sim tests: cargo test --release -p gossamer-sim --test detection
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
GATE_SEEDS=${GATE_SEEDS:-20}
LARGE_SEEDS=${LARGE_SEEDS:-10}
JOBS=${JOBS:-2}
cargo build --release -q -p gossamer-sim --example detection_sweep
SWEEP=target/release/examples/detection_sweep
GRID=(
  --config "memberlist:preset=memberlist"
  --config "m2x6k2:preset=memberlist,suspicion_mult=2"
  --config "m2x6k3:preset=memberlist,suspicion_mult=2,suspicion_confirmations=3"
  --config "m1x6k2:preset=memberlist,suspicion_mult=1"
  --config "m1x12k2:preset=fast,suspicion_refute_mult=0,push_pull_deltas=false"
  --config "lan-default-m1x12k2r3:preset=lan"
  --config "m1x24k2:preset=fast,suspicion_refute_mult=0,suspicion_max_timeout_mult=24"
  --config "m1x12k3:preset=fast,suspicion_refute_mult=0,suspicion_confirmations=3"
  --config "m1x12k1:preset=fast,suspicion_refute_mult=0,suspicion_confirmations=1"
  --config "m1x12k2p4:preset=fast,suspicion_refute_mult=0,suspect_probers=4"
  --config "m1x12k3p8:preset=fast,suspicion_refute_mult=0,suspicion_confirmations=3,suspect_probers=8"
  --config "m1x12k2r1.5:preset=fast,suspicion_refute_mult=1.5"
)
FINAL=(
  --config "memberlist:preset=memberlist"
  --config "m1x12k2:preset=fast,suspicion_refute_mult=0,push_pull_deltas=false"
  --config "lan-default-m1x12k2r3:preset=lan"
  --config "m1x12k3p8:preset=fast,suspicion_refute_mult=0,suspicion_confirmations=3,suspect_probers=8"
  --config "m1x12k2r1.5:preset=fast,suspicion_refute_mult=1.5"
)
echo "## detection.toml, 128 nodes, seeds 1..$SEEDS"
$SWEEP simulations/detection.toml --seeds "1..$SEEDS" --jobs "$JOBS" "${GRID[@]}" 2>/dev/null
echo
echo "## detection.toml, 1,000 nodes, seeds 1..$LARGE_SEEDS"
$SWEEP simulations/detection.toml --nodes 1000 --seeds "1..$LARGE_SEEDS" --jobs "$JOBS" \
  --config "memberlist:preset=memberlist" --config "lan-default-m1x12k2r3:preset=lan" \
  --config "m1x12k3p8:preset=fast,suspicion_refute_mult=0,suspicion_confirmations=3,suspect_probers=8" 2>/dev/null
echo
echo "## gray-failure.toml, seeds 1..$SEEDS (sweep)"
$SWEEP simulations/gray-failure.toml --seeds "1..$SEEDS" --jobs "$JOBS" "${GRID[@]}" 2>/dev/null
echo
for s in gray-failure lossy-lan; do
  echo "## $s.toml, seeds 1..$GATE_SEEDS (accuracy gate)"
  $SWEEP "simulations/$s.toml" --seeds "1..$GATE_SEEDS" --jobs "$JOBS" "${FINAL[@]}" 2>/dev/null
  echo
done
