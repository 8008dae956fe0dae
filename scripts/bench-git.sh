#!/usr/bin/env bash
# Compares stock git's own server with stratum on one generated repository,
# in the same run, and prints the times and the ratios (stratum / git):
#   push    a full push of every branch and tag (git push --mirror)
#   clone   a full clone (--bare, so checkout time is not counted)
#   clone2  the same clone again, through the same node (stratum: from the
#           node's pack cache)
#   fetch1  a fetch of one new commit into that clone
#   clone16 16 concurrent bare clones of the same repository (CI fan-out)
# stratum: a fresh 3-node `stratum dev` on ports 9301-9303 (replicas 3,
# quorum, fsync on). git: `git daemon` serving a bare repository from a
# local disk on port 9399 (the same machine, the same loopback).
# Also prints the dev process's peak resident memory (VmHWM: etcd and the
# three nodes together) and the repository's size.
# Usage: scripts/bench-git.sh [COMMITS]   (default 10000: about 100,000 objects)
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${1:-10000}
bin=$PWD/bin/stratum
[ -x "$bin" ] || make build >/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export GIT_CONFIG_GLOBAL=$work/gitconfig GIT_CONFIG_NOSYSTEM=1 HOME=$work
git config --global user.name bench && git config --global user.email bench@example.com
git config --global protocol.version 2

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# gen writes a fast-import stream: $1 commits on main, each changing four
# files of a two-level tree (20 folders of 50 files; one file in four is
# binary), a branch every 1,000 commits, a merge of each branch back, an
# annotated tag every 2,000 commits and a lightweight tag at the end.
gen() {
  awk -v n="$1" 'BEGIN {
    srand(7); mark = 0
    for (i = 0; i < n; i++) {
      files = ""
      for (f = 0; f < 4; f++) {
        path = sprintf("d%02d/f%03d%s", (i * 7 + f * 3) % 20, (i * 13 + f * 17) % 50, f == 3 ? ".bin" : ".txt")
        body = sprintf("commit %d file %d\n", i, f)
        for (k = 0; k < 20 + (i % 40); k++) body = body sprintf("line %d %d %d\n", k, i, int(rand() * 1000000))
        if (f == 3) body = body sprintf("%c%c%c", 0, 255, i % 256)
        mark++
        printf "blob\nmark :%d\ndata %d\n%s\n", mark, length(body), body
        files = files sprintf("M 100644 :%d %s\n", mark, path)
      }
      mark++
      printf "commit refs/heads/main\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata <<EOF\ncommit %d\nEOF\n", mark, 1700000000 + i, i
      if (i > 0) printf "from :%d\n", prev
      if (branch && i % 1000 == 500) { printf "merge :%d\n", branch; branch = 0 }
      printf "%s", files
      prev = mark
      if (i % 1000 == 0 && i + 500 < n) {
        mark++
        printf "commit refs/heads/b%d\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata <<EOF\nbranch %d\nEOF\nfrom :%d\nM 100644 inline branch/b%d.txt\ndata <<EOF\nbranch file %d\nEOF\n\n", i, mark, 1700000000 + i, i, prev, i, i
        branch = mark
      }
      if (i % 2000 == 1999) printf "tag v%d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata 8\nrelease\n\n", i, prev, 1700000000 + i
    }
    printf "reset refs/tags/last\nfrom :%d\n\n", prev
  }'
}

echo "generating a repository of $commits commits..."
src=$work/src
git init -q -b main "$src"
gen "$commits" | git -C "$src" fast-import --quiet
git -C "$src" repack -adq
objects=$(git -C "$src" rev-list --objects --all | wc -l)
packsize=$(du -sk "$src/.git/objects/pack" | cut -f1)
echo "repository: $objects objects, $commits commits on main, pack ${packsize} KiB"

# stock git: a bare repository served by git daemon (push enabled), started
# as git-daemon itself so that cleanup stops the server, not a wrapper.
bare=$work/served/repo.git
git init -q --bare "$bare"
git -C "$bare" config receive.fsckObjects true
"$(git --exec-path)/git-daemon" --reuseaddr --listen=127.0.0.1 --port=9399 --base-path="$work/served" --export-all \
  --enable=receive-pack --informative-errors "$work/served" >/dev/null 2>&1 &
pids+=($!)
gurl=git://127.0.0.1:9399/repo.git

# stratum: a fresh 3-node cluster.
"$bin" --log-level error dev --dir "$work/dev" --base-port 9301 --etcd-client-port 12679 --etcd-peer-port 12680 >/dev/null 2>&1 &
dev=$!
pids+=($dev)
for _ in $(seq 1 150); do
  curl -sf http://127.0.0.1:9301/readyz >/dev/null 2>&1 && curl -sf http://127.0.0.1:9303/readyz >/dev/null 2>&1 && break
  sleep 0.2
done
surl=http://127.0.0.1:9301/git/bench/repo.git
surl2=http://127.0.0.1:9302/git/bench/repo.git

declare -A t
run() { # name url: times one step against one server
  local name=$1 url=$2 start
  start=$(now)
  case $name in
    push) git -C "$src" push -q --mirror "$url" 2>&1 | tail -3 ;;
    clone) git clone -q --bare "$url" "$work/clone-$3" ;;
    clone2) git clone -q --bare "$url" "$work/clone2-$3" && rm -rf "$work/clone2-$3" ;;
    fetch1) git -C "$work/clone-$3" fetch -q "$url" main:main ;;
    clone16)
      local cl=() i p failed=0
      for i in $(seq 1 16); do git clone -q --bare "$url" "$work/c16-$3-$i" & cl+=($!); done
      for p in "${cl[@]}"; do wait "$p" || failed=1; done
      [ $failed = 0 ] || { echo "bench-git: a concurrent clone from $3 failed" >&2; exit 1; }
      rm -rf "$work"/c16-"$3"-* ;;
  esac
  t[$name-$3]=$(since "$start")
}

run push "$gurl" git
run push "$surl" stratum
run clone "$gurl" git
run clone "$surl2" stratum # through another node than the push
[ "$(git -C "$work/clone-git" for-each-ref | sort)" = "$(git -C "$work/clone-stratum" for-each-ref | sort)" ] ||
  { echo "bench-git: the two clones' refs differ" >&2; exit 1; }
run clone2 "$gurl" git
run clone2 "$surl2" stratum # the same tips again: stratum's pack cache serves it
echo "new file" > "$work/new.txt"
blob=$(git -C "$src" hash-object -w "$work/new.txt")
# one new commit on main: its tree is main's plus one new file
tree=$( (git -C "$src" ls-tree main; printf '100644 blob %s\tnew.txt\n' "$blob") | git -C "$src" mktree)
c=$(git -C "$src" commit-tree "$tree" -p main -m "one more")
git -C "$src" update-ref refs/heads/main "$c"
git -C "$src" push -q "$gurl" main
git -C "$src" push -q "$surl" main
run fetch1 "$gurl" git
run fetch1 "$surl2" stratum
run clone16 "$gurl" git
run clone16 "$surl2" stratum
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$dev/status")

printf '\n%-8s %10s %10s %8s\n' step "git s" "stratum s" ratio
for s in push clone clone2 fetch1 clone16; do
  awk -v s="$s" -v g="${t[$s-git]}" -v x="${t[$s-stratum]}" 'BEGIN { printf "%-8s %10.2f %10.2f %8.2f\n", s, g, x, (g > 0 ? x / g : 0) }'
done
echo "stratum dev peak RSS (etcd + 3 nodes): $((hwm / 1024)) MiB for $objects objects"
