#!/usr/bin/env bash
# drain-node.sh ID [TIMEOUT_SECONDS]: mark a node DRAINING and wait until it
# reports drained (every object it holds has its copies elsewhere) and is a
# member of no ref partition (the planner moved them), so that
# remove-node.sh can remove it safely. Default timeout 600 s.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=${1:?usage: drain-node.sh ID [TIMEOUT_SECONDS]}
timeout=${2:-600}
valid_id "$id"
api POST "/v1/admin/nodes/$id/drain" >/dev/null
echo "draining $id"
for _ in $(seq 1 "$timeout"); do
  line=$(api GET /v1/admin/nodes | tr -d '\n ' | grep -o "{\"id\":\"${id//./\\.}\"[^}]*}" || true)
  [ -n "$line" ] || die "node $id disappeared while draining"
  if printf '%s' "$line" | grep -q '"drained":true' && printf '%s' "$line" | grep -q '"partitions":0'; then
    echo "$id drained: safe to remove"
    exit 0
  fi
  sleep 1
done
die "$id not drained after ${timeout}s"
