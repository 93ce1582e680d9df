#!/usr/bin/env bash
# gossamer beside memberlist on the same loopback workload (issues #16 and #19):
# N nodes of each system in one process, all joining one seed, then an idle
# window (UDP datagrams, TCP segments and IP bytes per node per second, from the
# network namespace's own counters) and one crash (time until the first and
# until every other node holds it dead). Each run gets a fresh network
# namespace, so the counters see that process only; `loss` drops that share of
# UDP datagrams on the way in with iptables inside the namespace.
#   sudo scripts/versus_memberlist.sh                 # 128 nodes, loss 0 and 0.1, 3 runs each
#   RUNS=5 IDLE=30 sudo scripts/versus_memberlist.sh 128 0.1
#   SYSTEMS="memberlist gossamer-lan" scripts/versus_memberlist.sh    # gossamer-<preset>: any preset
#   GOSSAMER_BIN=old/loopback_cluster SYSTEMS=gossamer-lan scripts/versus_memberlist.sh   # an earlier build
# Needs root (network namespaces). Installs golang-go,
# golang-github-hashicorp-memberlist-dev and iptables with apt-get if missing.
# Prints each run's RESULT line, then the median of each figure per system ("none":
# no run had that figure, e.g. memberlist has no suspicion event).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-128}
losses=("${@:2}")
[ ${#losses[@]} -eq 0 ] && losses=(0 0.1)
runs=${RUNS:-3}
idle=${IDLE:-30}
warmup=${WARMUP:-10}

[ "$(id -u)" = 0 ] || { echo "versus_memberlist: needs root for network namespaces" >&2; exit 2; }
need=()
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/hashicorp/memberlist ] || need+=(golang-github-hashicorp-memberlist-dev)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd benches/memberlist && GOPATH=/usr/share/gocode GO111MODULE=off go build -o "$out/versus_memberlist" .)
if [ -n "${GOSSAMER_BIN:-}" ]; then # an earlier build, for before/after figures
    cp "$GOSSAMER_BIN" "$out/loopback_cluster"
else
    cargo build --release -q -p gossamer --example loopback_cluster
    cp target/release/examples/loopback_cluster "$out/"
fi

run_in_netns() { # loss command...
    local ns="gvm$$" loss=$1
    shift
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    if [ "$loss" != 0 ]; then
        ip netns exec "$ns" iptables -A INPUT -p udp -m statistic --mode random --probability "$loss" -j DROP
    fi
    ip netns exec "$ns" bash -c 'ulimit -n "$(ulimit -Hn)"; exec "$@"' _ "$@" || true
    ip netns del "$ns"
}

results="$out/results"
for loss in "${losses[@]}"; do
    for run in $(seq "$runs"); do
        for system in ${SYSTEMS:-memberlist gossamer-lan gossamer-memberlist}; do
            args=(--nodes "$nodes" --idle "$idle" --warmup "$warmup")
            if [ $system = memberlist ]; then
                bin="$out/versus_memberlist"
            else
                bin="$out/loopback_cluster"
                args+=(--preset "${system#gossamer-}")
            fi
            line=$(run_in_netns "$loss" "$bin" "${args[@]}" | grep '^RESULT' || echo "RESULT system=$system failed=1")
            echo "loss=$loss run=$run $line" | tee -a "$results"
        done
    done
done

median() { # values on stdin, "none" skipped
    sort -g | awk '$1 ~ /^[0-9.]+$/ { a[++m] = $1 } END { if (m == 0) print "none"; else if (m % 2) print a[(m + 1) / 2]; else print (a[m / 2] + a[m / 2 + 1]) / 2 }'
}
echo
echo "medians over $runs runs (nodes=$nodes, idle ${idle} s):"
for loss in "${losses[@]}"; do
    for system in ${SYSTEMS:-memberlist gossamer-lan gossamer-memberlist}; do
        row="  loss $loss $system:"
        for key in converge_s udp_pkts_per_node_s tcp_segs_per_node_s ip_bytes_per_node_s first_detect_s all_detect_s false_dead false_suspect; do
            value=$(grep "^loss=$loss .*system=$system " "$results" | grep -o " $key=[^ ]*" | cut -d= -f2 | median)
            row+=" $key=$value"
        done
        echo "$row"
    done
done
