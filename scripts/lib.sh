# Shared helpers for the ops scripts: the endpoint comes from
# STRATUM_ENDPOINT (default http://127.0.0.1:9001), the API token (nodes
# with auth on) from STRATUM_TOKEN; every failure is one clear line on
# stderr and a non-zero exit.
STRATUM_ENDPOINT=${STRATUM_ENDPOINT:-http://127.0.0.1:9001}
STRATUM_ENDPOINT=${STRATUM_ENDPOINT%/}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is not installed"

# api METHOD PATH: prints the body; fails with the server's error message.
api() {
  local out status
  local auth=()
  [ -n "${STRATUM_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $STRATUM_TOKEN")
  out=$(curl -sS "${auth[@]}" -X "$1" -w '\n%{http_code}' "$STRATUM_ENDPOINT$2" 2>&1) || die "cannot reach $STRATUM_ENDPOINT: $out"
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "$status" -ge 300 ]; then
    die "$1 $2: HTTP $status: $(printf '%s' "$out" | sed -n 's/.*"message": *"\([^"]*\)".*/\1/p' | head -1)"
  fi
  printf '%s\n' "$out"
}

# field NAME: the string or number values of "NAME": in JSON on stdin, one per line.
field() { grep -o "\"$1\": *\"\{0,1\}[^\",}]*" | sed 's/^"[^"]*": *"\{0,1\}//'; }
