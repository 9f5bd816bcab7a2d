#!/usr/bin/env bash
# The nightly metrics across workers: MERCHANTS merchants of PURCHASES purchases each on one
# PostgreSQL database, computed by 1, 2 and 3 `setia worker` processes in turn; the wall time
# from the workers' start until every merchant's snapshot is stored, and how many runs each
# merchant got (must be 1). See README.md beside this file.
#
#   bench/nightly/run.sh        # from the repository root (or anywhere)
#
# Knobs (environment): MERCHANTS (100), PURCHASES (100000), CUSTOMERS (10000), WORKERS
# ("1 2 3"), SEED (42), POSTGRES (postgres://postgres@127.0.0.1:5432, a server where the
# database setia_bench_nightly may be dropped and created), SETIA_BIN (a setia binary
# instead of a release build), WAIT_IDLE, KEEP=1 (keeps the work folder and the database),
# BENCH_RESULTS (a file to append the JSON results to).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

MERCHANTS=${MERCHANTS:-100}
PURCHASES=${PURCHASES:-100000}
CUSTOMERS=${CUSTOMERS:-10000}
WORKERS=${WORKERS:-1 2 3}
SEED=${SEED:-42}
POSTGRES=${POSTGRES:-postgres://postgres@127.0.0.1:5432}
database=setia_bench_nightly

setia=$(setia_release)
work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-nightly.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # The database holds 10 M purchases (about 6 GB): it goes with the work folder.
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work and the database $database" >&2
    else
        rm -rf "$work"
        psql -qX "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

sql() { psql -qtAX "$POSTGRES/$database" -c "$1"; }
psql -qX "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" >/dev/null
export SETIA_DATABASE_URL="$POSTGRES/$database"

echo "1/2 $MERCHANTS merchants of $PURCHASES purchases ($CUSTOMERS customers) each…" >&2
"$setia" sandbox generate --customers "$CUSTOMERS" --purchases "$PURCHASES" --seed "$SEED" \
    --out "$work/history.csv" >/dev/null
import_started=$(date +%s.%N)
for n in $(seq 1 "$MERCHANTS"); do
    merchant=$("$setia" merchant create --name "Toko $n" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    "$setia" transactions import --merchant "$merchant" "$work/history.csv" >/dev/null
done
import_seconds=$(python3 -c "import time; print(round(time.time() - $import_started, 1))")
sql "ANALYZE" >/dev/null

results="$work/results.jsonl"
: >"$results"
for workers in $WORKERS; do
    # A fresh night: no snapshot, no claim.
    sql "DELETE FROM nightly_runs; DELETE FROM metric_snapshots; DELETE FROM customer_scores" >/dev/null
    report_busy
    echo "2/2 $workers worker(s)…" >&2
    pids=()
    started=$(date +%s.%N)
    for _ in $(seq 1 "$workers"); do
        SETIA_NIGHTLY_METRICS_HOUR=0 SETIA_NIGHTLY_CHECK_SECONDS=1 "$setia" worker >/dev/null 2>"$work/worker.log" &
        pids+=($!)
    done
    until [ "$(sql "SELECT count(DISTINCT merchant_id) FROM metric_snapshots")" = "$MERCHANTS" ]; do
        sleep 0.2
    done
    seconds=$(python3 -c "import time; print(round(time.time() - $started, 2))")
    for pid in "${pids[@]}"; do kill -TERM "$pid"; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    runs=$(sql "SELECT count(*) FROM metric_snapshots")
    most=$(sql "SELECT max(n) FROM (SELECT count(*) AS n FROM metric_snapshots GROUP BY merchant_id) AS per")
    echo "{\"workers\": $workers, \"seconds\": $seconds, \"runs\": $runs, \"most_runs_of_a_merchant\": $most, \"busy\": $busy}" >>"$results"
done

python3 - "$results" "$MERCHANTS" "$PURCHASES" "$import_seconds" "${BENCH_RESULTS:-}" <<'PY'
import json, sys
path, merchants, purchases, import_seconds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [json.loads(line) for line in open(path)]
print(f"\nnightly metrics across workers, PostgreSQL: {merchants} merchants × {purchases:,} purchases "
      f"(imported in {import_seconds} s)")
print("| workers | wall s | runs | most runs of one merchant | busy at start |")
print("|--:|--:|--:|--:|--:|")
for r in rows:
    print(f"| {r['workers']} | {r['seconds']} | {r['runs']} | {r['most_runs_of_a_merchant']} | {r['busy']}% |")
failed = [r for r in rows if r["runs"] != merchants or r["most_runs_of_a_merchant"] != 1]
if failed:
    print(f"FAILED: a merchant was computed more than once or not at all: {failed}")
if out:
    with open(out, "a") as f:
        for r in rows:
            f.write(json.dumps({"benchmark": "nightly",
                                "measure": f"nightly metrics, {merchants} merchants × {purchases:,} purchases, {r['workers']} worker(s), PostgreSQL",
                                "unit": "s", "setia": r["seconds"], "peer": None, "peer_value": None,
                                "better": "lower", "goal": "every merchant computed exactly once",
                                "met": r["runs"] == merchants and r["most_runs_of_a_merchant"] == 1}) + "\n")
sys.exit(1 if failed else 0)
PY
