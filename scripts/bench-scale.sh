#!/usr/bin/env bash
# Throughput with 1,000,000 stored objects against a fresh cluster
# (docs/performance.md, "Scale and memory"): on one `stratum dev` cluster
# (ports 9201-9203), three runs of 10,000 x 4 KiB at c=16, a fill of
# OBJECTS x 1 KiB through the batch endpoint, 30 s idle, three more runs;
# then the dev process's peak resident memory.
# Usage: scripts/bench-scale.sh [OBJECTS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-1000000}
bin=bin/stratum
[ -x "$bin" ] || make build >/dev/null
ep=http://127.0.0.1:9201
dir=$(mktemp -d)
"$bin" --log-level error dev --dir "$dir" --base-port 9201 --etcd-client-port 12579 --etcd-peer-port 12580 >/dev/null 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:9203/readyz >/dev/null 2>&1 && break; sleep 0.2; done
for s in 2 3 4; do echo "== fresh, seed $s"; "$bin" --endpoint "$ep" bench -n 10000 -c 16 --size 4096 --seed "$s"; done
echo "== fill: $objects x 1 KiB"; "$bin" --endpoint "$ep" bench -n "$objects" -c 8 --size 1024 --batch 1000 --seed 100
du -sh "$dir"/n1/db "$dir"/n1/vlog 2>/dev/null || true
sleep 30
for s in 5 6 7; do echo "== at $objects, seed $s"; "$bin" --endpoint "$ep" bench -n 10000 -c 16 --size 4096 --seed "$s"; done
grep VmHWM /proc/$pid/status
