#!/usr/bin/env bash
# Benchmark: `make reproduce` (default profile) from a fresh clone, then again with nothing
# changed. Prints wall time and peak RSS of each (GNU time). Not a test: numbers for the notes.
# Usage: scripts/bench_reproduce.sh [workdir]   (default /tmp/asdstudy-bench-reproduce)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/asdstudy-bench-reproduce}"
rm -rf "$work" && git clone -q "$src" "$work/repo"
export ASDSTUDY_CACHE="$work/cache"
cd "$work/repo"
for run in first second; do
  /usr/bin/time -f "$run reproduce: %e s wall, %M KB peak RSS (largest process)" make reproduce > "$work/$run.log" 2> "$work/$run.time" || { tail -20 "$work/$run.log" "$work/$run.time"; exit 1; }
  tail -1 "$work/$run.time"
  grep -E "^\[|book:" "$work/$run.log" || true
done
