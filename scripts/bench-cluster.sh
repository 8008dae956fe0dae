#!/usr/bin/env bash
# Runs `stratum bench` against a fresh local cluster (stratum dev on ports
# 9201-9203), once per workload, and prints each result table. When the
# developers' ceiling tool sits beside the checkout (optional-outside),
# it first measures the machine's bare fan-out ceiling and prints the 4 KiB
# PUT and GET rates as ratios to it (docs/performance.md).
# Usage: scripts/bench-cluster.sh [OBJECTS]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-10000}
bin=bin/stratum
[ -x "$bin" ] || make build >/dev/null
ep=http://127.0.0.1:9201

run_fresh() { # args: bench flags
  local dir
  dir=$(mktemp -d)
  "$bin" --log-level error dev --dir "$dir" --base-port 9201 --etcd-client-port 12579 --etcd-peer-port 12580 >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    curl -sf "$ep/readyz" >/dev/null 2>&1 && curl -sf http://127.0.0.1:9203/readyz >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$bin" --endpoint "$ep" bench "$@" || { kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"; exit 1; }
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

ceiling=../shared/tools/ceiling/run.sh # optional-outside: the developers' tool, absent from a clone
if [ -x "$ceiling" ]; then # optional-outside
  read -r cput cget < <("$ceiling" | sed -n 's/.*ceiling_put=\([0-9]*\) ceiling_get=\([0-9]*\).*/\1 \2/p') || true # optional-outside
  echo "ceiling (same run): put ${cput}/s get ${cget}/s"
fi
out=$(run_fresh -n "$objects" -c 16 --size 4096)
echo "$out"
if [ -n "${cput:-}" ] && [ -n "${cget:-}" ]; then
  echo "$out" | awk -v cp="$cput" -v cg="$cget" '$1 == "put" { printf "ratio to the ceiling: put %.2fx", $4 / cp } $1 == "get" { printf ", get %.2fx\n", $4 / cg }'
fi
run_fresh -n "$objects" -c 16 --size 4096 --ring
run_fresh -n "$objects" -c 16 --size 1024
run_fresh -n $((objects * 5)) -c 8 --size 1024 --batch 1000
run_fresh -n "$objects" -c 16 --git-mix
