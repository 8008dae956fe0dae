#!/usr/bin/env bash
# health.sh: /healthz and /readyz of every node in the ring; exits non-zero
# if any node is not ready. Usage: STRATUM_ENDPOINT=http://host:port scripts/health.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
addrs=$(api GET /v1/ring | field addr)
[ -n "$addrs" ] || die "the ring lists no nodes"
bad=0
for a in $addrs; do
  if ready=$(api_at "$(node_url "$a")" GET /readyz 2>/dev/null) && printf '%s' "$ready" | grep -q '"ready"'; then
    cp=$(printf '%s' "$ready" | field control_plane)
    echo "$a ready control_plane=$cp"
  else
    echo "$a NOT READY"
    bad=1
  fi
done
exit $bad
