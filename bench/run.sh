#!/usr/bin/env bash
# Builds steady in release mode, brings the tools the benchmarks need, and runs bench/run.py,
# which writes BENCHMARKS.md (a --quick run writes target/BENCHMARKS.quick.md instead, so a
# smoke run never replaces the measured figures).
#
#   bench/run.sh                      every figure, full repetitions (run on an idle machine)
#   bench/run.sh --quick              a smoke run: few repetitions, 10 s of supervision
#   bench/run.sh --only recovery,scale --quick
#   bench/run.sh --supervise-secs 60 --tree-size 1000 --rate 20
#   bench/run.sh --help               every option (sections: passthrough, locked, queue,
#                                     throughput, hang, recovery, overhead, scale)
#
# What it installs when missing: hyperfine, strace, util-linux, coreutils, GNU time from Debian
# (needs root and apt-get; otherwise it names the missing packages and stops), and uv plus a
# current pip from PyPI into target/bench-venv. npm is used where it is on PATH; without it the
# npm rows say they were not measured.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in hyperfine:hyperfine flock:util-linux timeout:coreutils /usr/bin/time:time strace:strace python3:python3; do
    tool=${pair%%:*} pkg=${pair#*:}
    command -v "$tool" >/dev/null || missing+=("$pkg")
done
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bench: installing ${missing[*]} from Debian" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bench: missing ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

venv=target/bench-venv
if [[ ! -x $venv/bin/uv ]]; then
    echo "bench: installing uv and a current pip into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip uv
fi
export PATH="$PWD/$venv/bin:$PATH"

cargo build --release --quiet
# The binary users get from the releases, the wheel and the Docker image is the static (musl)
# one; it is what the figures are for. The gnu build above is what `cargo install` gives, and
# is measured beside it where the two differ.
static_target="$(uname -m)-unknown-linux-musl"
if rustup target list --installed 2>/dev/null | grep -qx "$static_target" \
    || rustup target add "$static_target" >/dev/null 2>&1; then
    cargo build --release --quiet --target "$static_target"
else
    echo "bench: cannot add the Rust target $static_target; measuring the gnu build only" >&2
fi
exec python3 bench/run.py "$@"
