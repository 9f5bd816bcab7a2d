#!/usr/bin/env bash
# Every benchmark, each beside its peer, in one command; then bench/RESULTS.md, a markdown
# table of setia's figures against its peers' with their ratios. See README.md beside this file.
#
#   bench/run.sh                       # every bench/*/run.sh, in name order
#   BENCHES="ingest metrics" bench/run.sh   # only these (names of folders under bench/)
#
# Each bench/NAME/run.sh runs with BENCH_RESULTS naming one file, to which it appends a JSON
# line per measure (see README.md). A benchmark that fails, or that reports no measure, is
# reported and the next one runs; this script then exits 1, after writing the table of what
# did run. Every other environment variable (the benchmarks' own knobs, CARGO_TARGET_DIR)
# is passed through. KEEP=1 keeps the folder with each benchmark's log and the raw results.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

available=()
for script in "$here"/*/run.sh; do
  [ -f "$script" ] && available+=("$(basename "$(dirname "$script")")")
done

if [ -n "${BENCHES:-}" ]; then
  selected=()
  for name in $BENCHES; do
    if [ ! -f "$here/$name/run.sh" ]; then
      echo "bench/run.sh: no benchmark \"$name\" (there is no bench/$name/run.sh); available: ${available[*]}" >&2
      exit 2
    fi
    selected+=("$name")
  done
else
  selected=("${available[@]}")
fi
if [ "${#selected[@]}" -eq 0 ]; then
  echo "bench/run.sh: no benchmark to run" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench.XXXXXX")
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
export BENCH_RESULTS="$work/results.jsonl"
: >"$BENCH_RESULTS"
: >"$work/runs.tsv"

for name in "${selected[@]}"; do
  echo "=== bench/$name/run.sh ($(date -u +%H:%M:%S) UTC)" >&2
  started=$(date +%s.%N)
  bash "$here/$name/run.sh" 2>&1 | tee "$work/$name.log"
  code=${PIPESTATUS[0]}
  seconds=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  if [ "$code" -ne 0 ]; then
    echo "=== bench/$name/run.sh FAILED with exit code $code after ${seconds} s; going on" >&2
  else
    echo "=== bench/$name/run.sh done in ${seconds} s" >&2
  fi
  printf '%s\t%s\t%s\n' "$name" "$code" "$seconds" >>"$work/runs.tsv"
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$(nproc) cores${cpu:+ ($cpu)}, $memory of memory, $(uname -sr)"

echo >&2
python3 "$here/results.py" --results "$BENCH_RESULTS" --runs "$work/runs.tsv" \
  --out "$here/RESULTS.md" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --commit "$commit" \
  --machine "$machine"
status=$?
echo >&2
echo "wrote bench/RESULTS.md" >&2
exit "$status"
