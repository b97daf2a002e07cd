#!/usr/bin/env bash
# Builds steady in release mode and runs the benchmarks, which write BENCHMARKS.md.
# Run it on an otherwise idle machine; `--quick` gives a smoke run with fewer repetitions.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine flock timeout /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (Debian: apt-get install hyperfine util-linux coreutils time python3)" >&2; exit 1; }
done
cargo build --release --quiet
exec python3 bench/run.py "$@"
