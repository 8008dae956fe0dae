# Shared helpers for the ops scripts. The endpoint comes from
# STRATUM_ENDPOINT (default http://127.0.0.1:9001); its scheme (http or
# https) is every node's. The API token (nodes with auth on, the default
# for stratum datanode) comes from STRATUM_TOKEN, the CA certificate for
# https from STRATUM_CACERT. The token never goes on a command line, where
# ps shows it to every user: curl reads it from a config on its stdin.
# Every failure is one clear line on stderr and a non-zero exit.
STRATUM_ENDPOINT=${STRATUM_ENDPOINT:-http://127.0.0.1:9001}
STRATUM_ENDPOINT=${STRATUM_ENDPOINT%/}
SCHEME=${STRATUM_ENDPOINT%%://*}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is not installed"
case "$SCHEME" in
  http | https) ;;
  *) die "STRATUM_ENDPOINT must start with http:// or https://, got $STRATUM_ENDPOINT" ;;
esac

# fetch URL CURL_ARGS...: curl with the token (through stdin) and the CA.
fetch() {
  local url=$1
  shift
  local tls=()
  [ -n "${STRATUM_CACERT:-}" ] && tls=(--cacert "$STRATUM_CACERT")
  if [ -n "${STRATUM_TOKEN:-}" ]; then
    printf 'header = "Authorization: Bearer %s"\n' "$STRATUM_TOKEN" | curl -K - "${tls[@]}" "$@" "$url"
  else
    curl "${tls[@]}" "$@" "$url"
  fi
}

# api_at BASE METHOD PATH: prints the body; fails with the server's error
# message.
api_at() {
  local out status
  out=$(fetch "$1$3" -sS --max-time 30 -X "$2" -w '\n%{http_code}' 2>&1) || die "cannot reach $1: $out"
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "$status" -ge 300 ]; then
    die "$2 $3: HTTP $status: $(printf '%s' "$out" | sed -n 's/.*"message": *"\([^"]*\)".*/\1/p' | head -1)"
  fi
  printf '%s\n' "$out"
}

# api METHOD PATH: api_at the endpoint.
api() { api_at "$STRATUM_ENDPOINT" "$@"; }

# node_url ADDR: a node's base URL, in the endpoint's scheme.
node_url() { printf '%s://%s' "$SCHEME" "$1"; }

# valid_id ID: dies unless ID is a node ID (what the nodes accept), so an
# ID can never add a path, a query or a fragment to a URL.
valid_id() {
  [[ "$1" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "invalid node ID '$1': want 1-64 letters, digits, '.', '_' or '-'"
}

# field NAME: the string or number values of "NAME": in JSON on stdin, one per line.
field() { grep -o "\"$1\": *\"\{0,1\}[^\",}]*" | sed 's/^"[^"]*": *"\{0,1\}//'; }
