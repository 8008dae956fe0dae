#!/usr/bin/env bash
# remove-node.sh ID [--force]: remove a drained node from the cluster.
# Without --force the cluster refuses a removal that could leave objects
# below their replication factor.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=${1:?usage: remove-node.sh ID [--force]}
valid_id "$id"
q=""
[ "${2:-}" = "--force" ] && q="?force=true"
api POST "/v1/admin/nodes/$id/remove$q" >/dev/null
echo "$id removed"
