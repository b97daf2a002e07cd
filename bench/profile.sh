#!/usr/bin/env bash
# Lists the syscalls of a trivial locked, supervised run, so the floor (one fork+exec+wait plus
# one flock) can be checked against what steady really does (issue 18, item 2).
#
#   bench/profile.sh [OUT_DIR] [-- STEADY_ARGS...]
#
# Default run: `steady --cache D --timeout 60s -- true`, with D a fresh directory. Writes to
# OUT_DIR (default: a new temp directory, printed at the end):
#   summary.txt   `strace -c -f`: counts and time per syscall, steady and its child together
#   trace.txt     `strace -f -e trace=file,desc`: every file and descriptor call, one line each
#   full.txt      `strace -f`: every syscall, with pids
#   steady.txt    the syscalls of the steady process alone (not the child it runs), by count
#   files.txt     every path the steady process itself opens or stats
# and prints steady.txt and files.txt. Installs strace from Debian when it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
if [[ $# -gt 0 && $1 != -- ]]; then
    out=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
if ! command -v strace >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends strace >/dev/null
    else
        echo "profile: strace is missing (Debian: apt-get install strace)" >&2
        exit 1
    fi
fi
cargo build --release --quiet
steady=$PWD/target/release/steady
out=${out:-$(mktemp -d -t steady-profile-XXXXXX)}
mkdir -p "$out"
cache=$(mktemp -d -t steady-profile-cache-XXXXXX)
trap 'rm -rf "$cache"' EXIT
if [[ $# -gt 0 ]]; then
    args=("$@")
else
    args=(--cache "$cache" --timeout 60s -- true)
fi
# The environment steady would see from a user, less anything that steers it.
run() { env $(env | sed -n 's/^\(STEADY_[A-Za-z0-9_]*\)=.*/-u \1/p') "$@"; }

# A warm-up, so the page cache and the lock file exist as in a repeated run.
run "$steady" "${args[@]}" >/dev/null 2>&1 || true
run strace -c -f -o "$out/summary.txt" "$steady" "${args[@]}" >/dev/null
run strace -f -qq -e trace=file,desc -o "$out/trace.txt" "$steady" "${args[@]}" >/dev/null
run strace -f -qq -o "$out/full.txt" "$steady" "${args[@]}" >/dev/null

# With -f every line starts with the pid; the first line is steady's own.
pid=$(awk 'NR == 1 { print $1; exit }' "$out/full.txt")
# "<... x resumed>" continues a call already counted; "---" and "+++" are signals and exits.
awk -v pid="$pid" '$1 == pid && $2 !~ /^(<\.\.\.|---|\+\+\+)/ { sub(/\(.*/, "", $2); print $2 }' "$out/full.txt" |
    sort | uniq -c | sort -rn >"$out/steady.txt"
awk -v pid="$pid" '$1 == pid && /"\// { if (match($0, /"\/[^"]*"/)) { split($2, c, "("); print c[1], substr($0, RSTART, RLENGTH) } }' "$out/full.txt" \
    >"$out/files.txt"

total=$(awk '{ n += $1 } END { print n }' "$out/steady.txt")
echo "== steady ${args[*]}"
echo "== syscalls of the steady process alone (pid $pid): $total in all"
cat "$out/steady.txt"
echo "== paths steady itself touches, in order"
cat "$out/files.txt"
echo "== strace -c -f (steady and its child)"
cat "$out/summary.txt"
echo "== written to $out"
