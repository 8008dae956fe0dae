#!/usr/bin/env bash
# repair.sh start|pause|resume|watch [TIMEOUT_SECONDS]: operate repair and
# rebalancing (docs/repair.md).
#   start   resume repair if paused, then watch it
#   pause   hold repair and rebalancing on every node
#   resume  let them continue
#   watch   print each node's progress every 2 s until every node is idle
#           with nothing left to copy (default timeout 600 s)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: repair.sh start|pause|resume|watch [TIMEOUT_SECONDS]}
timeout=${2:-600}

nodes() { api GET /v1/cluster | sed '/"breakers"/,$d' | field addr; }

watch_repair() {
  local deadline=$((SECONDS + timeout)) line busy doc addr
  while :; do
    busy=0
    for addr in $(nodes); do
      doc=$(api_at "$(node_url "$addr")" GET /v1/admin/rebalance 2>&1) || { echo "$addr: unreachable: $doc"; busy=1; continue; }
      doc=$(printf '%s' "$doc" | tr -d '\n ')
      line="$addr: copied $(printf '%s' "$doc" | field copied) of $(printf '%s' "$doc" | field found), remaining $(printf '%s' "$doc" | field remaining)"
      printf '%s' "$doc" | grep -q '"paused":true' && line="$line, PAUSED" && busy=1
      printf '%s' "$doc" | grep -q '"running":true' && line="$line, running" && busy=1
      [ "$(printf '%s' "$doc" | field remaining)" = "0" ] || busy=1
      echo "$line"
    done
    [ "$busy" = 0 ] && { echo "repair idle: nothing left to copy"; return 0; }
    [ "$SECONDS" -lt "$deadline" ] || die "repair not idle after ${timeout}s"
    sleep 2
  done
}

case "$cmd" in
  pause) api POST /v1/admin/rebalance/pause >/dev/null; echo "repair paused cluster-wide" ;;
  resume) api POST /v1/admin/rebalance/resume >/dev/null; echo "repair resumed cluster-wide" ;;
  start) api POST /v1/admin/rebalance/resume >/dev/null; echo "repair running"; watch_repair ;;
  watch) watch_repair ;;
  *) die "unknown command $cmd: want start, pause, resume or watch" ;;
esac
