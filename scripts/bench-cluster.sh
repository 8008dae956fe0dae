#!/usr/bin/env bash
# Runs `stratum bench` against a fresh local cluster (stratum dev on ports
# 9201-9203), once per workload, and prints each result table.
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

run_fresh -n "$objects" -c 16 --size 4096
run_fresh -n "$objects" -c 16 --size 4096 --ring
run_fresh -n "$objects" -c 16 --size 1024
run_fresh -n $((objects * 5)) -c 8 --size 1024 --batch 1000
run_fresh -n "$objects" -c 16 --git-mix
