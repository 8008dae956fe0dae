#!/usr/bin/env bash
# cluster-status.sh: one line per node (id, state, live, address) and the
# ring revision. Usage: STRATUM_ENDPOINT=... scripts/cluster-status.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
doc=$(api GET /v1/cluster | sed '/"breakers"/,$d') # the node list only
echo "ring revision $(printf '%s' "$doc" | field ring_revision | head -1), control plane $(printf '%s' "$doc" | field control_plane | head -1)"
paste <(printf '%s' "$doc" | field id) <(printf '%s' "$doc" | field state) <(printf '%s' "$doc" | field live) <(printf '%s' "$doc" | field addr | head -n "$(printf '%s' "$doc" | field id | wc -l)")
