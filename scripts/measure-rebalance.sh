#!/usr/bin/env bash
# Measures a rebalance on this machine: a control plane and 3 data nodes as
# separate processes (fsync on), OBJECTS objects of 4 KiB written with
# `stratum bench`, then a fourth node joins. Prints how long until the new
# node holds its share and every old owner has shed what moved (misplaced
# 0, N copies in all), the objects/s and MB/s of the move, and, when LOAD=1,
# a `stratum bench` run through n1 during the move next to one before it.
# Usage: scripts/measure-rebalance.sh [OBJECTS] [RATE]   (defaults 20000, 200)
# RATE is --anti-entropy-rate (objects/s per node). Ports 9301-9304,
# 12679-12680. Not part of `make test`: figures go in docs/repair.md.
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-20000}
rate=${2:-200}
bin=bin/stratum
make build >/dev/null
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
etcd=http://127.0.0.1:12679
"$bin" --log-level error controlplane --name cp --data-dir "$dir/cp" --listen-client-urls $etcd \
  --listen-peer-urls http://127.0.0.1:12680 --initial-cluster cp=http://127.0.0.1:12680 >"$dir/cp.log" 2>&1 &
pids+=($!)
node() { # node N
  "$bin" --log-level warn datanode --id "n$1" --listen "127.0.0.1:930$1" --data-dir "$dir/n$1" --etcd $etcd \
    --detector=false --auth=false --anti-entropy-interval 2s --anti-entropy-rate "$rate" >"$dir/n$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:930$1/readyz" >/dev/null && return; sleep 0.2; done
  echo "n$1 did not become ready" >&2; cat "$dir/n$1.log" >&2; exit 1
}
num() { curl -s "http://127.0.0.1:930$1/v1/status" | grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$'; }
for i in 1 2 3; do node "$i"; done
"$bin" --endpoint http://127.0.0.1:9301 bench -n "$objects" -c 8 --size 4096 --batch 500 --seed 1 >"$dir/load.txt"
echo "stored $objects objects of 4 KiB; copies: $(( $(num 1 objects) + $(num 2 objects) + $(num 3 objects) ))"
if [ "${LOAD:-0}" = 1 ]; then
  echo "foreground before the join:"
  "$bin" --endpoint http://127.0.0.1:9301 bench -n 3000 -c 16 --size 4096 --seed $((RANDOM + 2))
fi
start=$(date +%s.%N)
node 4
if [ "${LOAD:-0}" = 1 ]; then
  echo "foreground during the move:"
  "$bin" --endpoint http://127.0.0.1:9301 bench -n 3000 -c 16 --size 4096 --seed $((RANDOM + 2))
fi
want=$((3 * objects))
[ "${LOAD:-0}" = 1 ] && want=$((3 * (objects + 6000))) # the two foreground runs store 3000 each
while :; do
  total=$(( $(num 1 objects) + $(num 2 objects) + $(num 3 objects) + $(num 4 objects) ))
  misplaced=$(( $(num 1 misplaced) + $(num 2 misplaced) + $(num 3 misplaced) + $(num 4 misplaced) ))
  [ "$total" -eq "$want" ] && [ "$misplaced" -eq 0 ] && [ -n "$(curl -s http://127.0.0.1:9304/v1/status | grep -o '"ae_last_round"')" ] && break
  tick=$((${tick:-0} + 1))
  awk -v s="$start" -v n="$(date +%s.%N)" -v a="$(num 4 objects)" -v m="$misplaced" -v t="$total" \
    'BEGIN { printf "  %5.1f s: n4 holds %d, copies in all %d, misplaced %d\n", n - s, a, t, m }'
  sleep 1
done
end=$(date +%s.%N)
moved=$(num 4 objects)
awk -v s="$start" -v e="$end" -v m="$moved" 'BEGIN {
  t = e - s; printf "n4 received %d copies and the old owners shed theirs in %.1f s: %.0f objects/s, %.2f MB/s\n", m, t, m / t, m * 4096 / t / 1e6 }'
