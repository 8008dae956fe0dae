#!/usr/bin/env bash
# Throughput with 1,000,000 stored objects against fresh, and memory
# (docs/performance.md, "Scale and memory"). Two `stratum dev` clusters run
# side by side: FULL (ports 9201-9203) and a small REFERENCE (9301-9303).
#  1. three runs of 20,000 x 4 KiB at c=16 on FULL while it is fresh, and
#     one on REFERENCE to warm it;
#  2. a fill of OBJECTS x 1 KiB into FULL through the batch endpoint, 30 s idle;
#  3. ROUNDS pairs of runs, one on each cluster, the order alternating.
# It prints two comparisons. "sequential": FULL's medians after the fill
# against its own medians before (the method before 2026-12-07, exposed
# to the machine getting slower or faster in between). "paired": each
# pair's FULL rate over REFERENCE's rate, measured a few seconds apart,
# and the median of those ratios; a change of the machine's speed over
# minutes cancels out of it. Then both processes' peak resident memory.
# Usage: scripts/bench-scale.sh [OBJECTS] [ROUNDS]   (default 1000000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-1000000}
rounds=${2:-5}
bin=bin/stratum
[ -x "$bin" ] || make build >/dev/null
full=http://127.0.0.1:9201
ref=http://127.0.0.1:9301
dirs=() pids=()
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "${dirs[@]}"' EXIT
start() { # base etcd-client-port
  local dir
  dir=$(mktemp -d)
  dirs+=("$dir")
  "$bin" --log-level error dev --dir "$dir" --base-port "$1" --etcd-client-port "$2" --etcd-peer-port $(($2 + 1)) >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$(($1 + 2))/readyz" >/dev/null 2>&1 && return; sleep 0.2; done
  echo "bench-scale: the cluster on port $1 did not become ready" >&2
  exit 1
}
# bench ENDPOINT SEED: one run of 20,000 x 4 KiB (10,000 before 2026-12-07:
# a GET phase of under a second was too short to measure steadily); prints
# its table and a line "rates PUT GET".
bench() {
  local out
  out=$("$bin" --endpoint "$1" bench -n 20000 -c 16 --size 4096 --seed "$2")
  echo "$out"
  echo "$out" | awk '$1 == "put" { p = $4 } $1 == "get" { g = $4 } END { print "rates", p, g }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

start 9201 12579
start 9301 12679
fullpid=${pids[0]} refpid=${pids[1]}
fresh=()
for s in 2 3 4; do
  echo "== FULL while fresh, seed $s"
  r=$(bench "$full" "$s")
  echo "$r" | grep -v '^rates'
  fresh+=("$(echo "$r" | sed -n 's/^rates //p')")
done
echo "== REFERENCE, warm-up, seed 2"
bench "$ref" 2 | grep -v '^rates'
echo "== fill of FULL: $objects x 1 KiB"
"$bin" --endpoint "$full" bench -n "$objects" -c 8 --size 1024 --batch 1000 --seed 100
du -sh "${dirs[0]}"/n1/db "${dirs[0]}"/n1/vlog 2>/dev/null || true
sleep 30
after=() pairs=()
for i in $(seq 1 "$rounds"); do
  s=$((4 + i))
  if [ $((i % 2)) -eq 1 ]; then order="ref full"; else order="full ref"; fi
  for which in $order; do
    if [ "$which" = full ]; then
      echo "== round $i: FULL at $objects, seed $s"
      r=$(bench "$full" "$s")
      f=$(echo "$r" | sed -n 's/^rates //p')
      after+=("$f")
    else
      echo "== round $i: REFERENCE, seed $s"
      r=$(bench "$ref" "$s")
      g=$(echo "$r" | sed -n 's/^rates //p')
    fi
    echo "$r" | grep -v '^rates'
  done
  pairs+=("$f $g")
  echo "$f $g" | awk -v i="$i" '{ printf "round %d: FULL/REFERENCE put %.0f%% get %.0f%%\n", i, 100 * $1 / $3, 100 * $2 / $4 }'
done
echo "== summary"
fp=$(printf '%s\n' "${fresh[@]}" | awk '{ print $1 }' | median)
fg=$(printf '%s\n' "${fresh[@]}" | awk '{ print $2 }' | median)
ap=$(printf '%s\n' "${after[@]}" | awk '{ print $1 }' | median)
ag=$(printf '%s\n' "${after[@]}" | awk '{ print $2 }' | median)
awk -v fp="$fp" -v fg="$fg" -v ap="$ap" -v ag="$ag" 'BEGIN { printf "sequential: put %d -> %d (%.0f%%), get %d -> %d (%.0f%%)\n", fp, ap, 100 * ap / fp, fg, ag, 100 * ag / fg }'
rp=$(printf '%s\n' "${pairs[@]}" | awk '{ print 100 * $1 / $3 }' | median)
rg=$(printf '%s\n' "${pairs[@]}" | awk '{ print 100 * $2 / $4 }' | median)
awk -v rp="$rp" -v rg="$rg" -v n="$rounds" 'BEGIN { printf "paired (median of %d ratios): put %.0f%%, get %.0f%%\n", n, rp, rg }'
echo "FULL $(grep VmHWM /proc/"$fullpid"/status)"
echo "REFERENCE $(grep VmHWM /proc/"$refpid"/status)"
