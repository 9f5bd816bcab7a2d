#!/usr/bin/env bash
# Metrics benchmark: `setia metrics` on 10 M purchases of 1 M customers against DuckDB, and
# setia's BG/NBD fit against the lifetimes package, in one run. See README.md beside this file.
#
#   bench/metrics/run.sh           # from the repository root (or anywhere)
#
# Steps (each timed with /usr/bin/time, which also gives the peak RSS):
#   1. setia sandbox generate --customers 1000000 --purchases 10000000 --seed 42 --out history.csv
#   2. setia merchant create + setia transactions import of that CSV into a fresh SQLite file
#   3. setia metrics --merchant … --as-of <the day after the last purchase>, end to end; then
#      once more, as the nightly run repeats it (the customer scores then exist already), with
#      `setia serve --no-worker` on the same database taking signed webhooks at WEBHOOK_RATE a
#      second (ingest-load, open loop) while that run stores its scores
#   4. the DuckDB peer (duckdb_peer.py) on the same CSV: totals, monthly cohorts, RFM, and the
#      per-customer scores stored in a table of a DuckDB file of its own (P(alive), expected
#      purchases and CLV taken from setia's scores: DuckDB has no BG/NBD model); then every
#      customer's R, F, M and segment compared with setia's
#   5. the same on PostgreSQL (a scratch database on POSTGRES_URL's server): merchant create,
#      transactions import, setia metrics twice (each after a VACUUM ANALYZE, as autovacuum
#      would), every customer's R, F, M and segment compared with DuckDB's (the row is
#      reported; the 1.5x goal is SQLite's)
#   6. bgnbd-fit (src/main.rs here): setia's batch on the same CSV in memory, the (x, t_x, T)
#      summary it fits exported, and the BG/NBD fit timed on it
#   7. the lifetimes peer (lifetimes_peer.py) on that summary: grouped with weights, and one
#      row per customer
#   8. summarise.py: checks that the numbers agree, prints the summary, and appends one JSON
#      line per measure to $BENCH_RESULTS when it is set
#
# Knobs (environment): CUSTOMERS (1000000), PURCHASES (10000000), SEED (42), FIT_RUNS (5),
# LIFETIMES_PER_CUSTOMER (1; 0 skips lifetimes' one-row-per-customer fit, which takes minutes),
# WAIT_IDLE (seconds to wait for a quiet machine, 0), SETIA_BIN (a setia binary to use instead
# of building one; FIT_BIN likewise for bgnbd-fit), KEEP=1 keeps the work folder,
# BENCH_RESULTS (a file to append the JSON results to), WEBHOOK_RATE (1000 requests a second),
# POSTGRES_URL (a server where a scratch database may be created and dropped;
# postgres://postgres@127.0.0.1:5432/postgres; "none" leaves out step 5).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

CUSTOMERS=${CUSTOMERS:-1000000}
PURCHASES=${PURCHASES:-10000000}
SEED=${SEED:-42}
FIT_RUNS=${FIT_RUNS:-5}
LIFETIMES_PER_CUSTOMER=${LIFETIMES_PER_CUSTOMER:-1}
WEBHOOK_RATE=${WEBHOOK_RATE:-1000}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SECRET=bench-webhook-secret-0123456789
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/setia-target}

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (Debian package 'time') for peak memory…" >&2
    apt-get install -y time >&2
fi
# The peers' versions are pinned so that runs on different days compare the same peer.
if ! python3 -c 'import duckdb, lifetimes, pandas' 2>/dev/null; then
    echo "installing the peers' Python packages (duckdb, lifetimes, pandas)…" >&2
    python3 -m pip install --quiet duckdb==2.0.1 lifetimes==0.11.3 pandas >&2 || {
        echo "the peers need Python packages: python3 -m pip install duckdb==2.0.1 lifetimes==0.11.3 pandas" >&2
        exit 1
    }
fi

if [ -z "${SETIA_BIN:-}" ] || [ -z "${FIT_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
    # One build for all, so every dependency keeps the feature set `setia` builds it with and
    # the release build of Polars is shared rather than built a second time.
    echo "building setia, bgnbd-fit and ingest-load (release)…" >&2
    cargo build --release -p setia -p setia-bench-metrics -p setia-bench-ingest >&2
fi
setia=${SETIA_BIN:-$CARGO_TARGET_DIR/release/setia}
fit_bin=${FIT_BIN:-$CARGO_TARGET_DIR/release/bgnbd-fit}
load_bin=${LOAD_BIN:-$CARGO_TARGET_DIR/release/ingest-load}

report_busy

work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-metrics.XXXXXX")
server=
scratch_db=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    if [ -n "$scratch_db" ]; then
        psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

timed() { # NAME COMMAND…: runs COMMAND, wall time and peak RSS into $work/NAME.time
    local name=$1
    shift
    /usr/bin/time -o "$work/$name.time" -f '{"seconds": %e, "max_rss_kb": %M}' "$@"
}

# compare_scores SCORES OUT: setia's scores by external id (a Parquet or, by its name, a CSV
# file) against the peer's table in peer-scores.duckdb: rows on each side, and customers whose
# R, F, M and segment are the same.
compare_scores() {
    python3 - "$1" "$work/peer-scores.duckdb" "$2" <<'PY'
import json, sys, duckdb
scores, peer, out = sys.argv[1:]
read = "read_parquet($1)" if scores.endswith(".parquet") else "read_csv($1, header = true)"
connection = duckdb.connect(peer, read_only=True)
setia_rows, peer_rows, same = connection.execute(
    f"SELECT (SELECT count(*) FROM {read}), (SELECT count(*) FROM customer_scores), "
    f"(SELECT count(*) FROM customer_scores p JOIN {read} s ON s.external_id = p.customer "
    " WHERE p.r = s.rfm_r AND p.f = s.rfm_f AND p.m = s.rfm_m AND p.segment = s.segment)",
    [scores]).fetchone()
json.dump({"setia_rows": setia_rows, "peer_rows": peer_rows, "same_rfm_and_segment": same}, open(out, "w"))
PY
}

export SETIA_DATABASE_URL="sqlite://$work/setia.db"

echo "1/7 sandbox generate: $CUSTOMERS customers, $PURCHASES purchases, seed $SEED…" >&2
timed generate "$setia" sandbox generate --customers "$CUSTOMERS" --purchases "$PURCHASES" \
    --seed "$SEED" --out "$work/history.csv" >"$work/generate.json"
cat "$work/generate.json" >&2
as_of=$(python3 -c '
import duckdb, sys
print(duckdb.execute("SELECT max(CAST(occurred_at AS TIMESTAMP))::DATE + 1 FROM read_csv(?, header = true)",
                     [sys.argv[1]]).fetchone()[0])' "$work/history.csv")
echo "as of $as_of (the day after the last purchase)" >&2

echo "2/7 merchant create and transactions import into SQLite…" >&2
merchant=$("$setia" merchant create --name "Toko Bench" --timezone Asia/Jakarta |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
timed import "$setia" transactions import --merchant "$merchant" "$work/history.csv" >"$work/import.json"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["rejected"] = len(d["rejected"]); print(d)' \
    "$work/import.json" >&2

echo "3/7 setia metrics, end to end…" >&2
RUST_LOG=info,sqlx=warn,setia::metrics_job=debug timed metrics "$setia" --log-format json \
    metrics --merchant "$merchant" --as-of "$as_of" >"$work/report.json" 2>"$work/metrics.log"

echo "   and again, as the nightly run would, with webhooks coming in while it stores…" >&2
created=$("$setia" merchant create --name "Toko Webhooks" --webhook-secret "$SECRET")
webhook_path=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["webhook_path"])' "$created")
read -r server base < <(start_server serve "$setia" serve --listen 127.0.0.1:0 --no-worker --no-scheduler)
# The load covers the store phase: as long as the first run stored, and at least 3 s.
store_window=$(python3 "$here/summarise.py" --store-seconds "$work/metrics.log")
RUST_LOG=info,sqlx=warn,setia::metrics_job=debug timed metrics-again "$setia" --log-format json \
    metrics --merchant "$merchant" --as-of "$as_of" >"$work/report-again.json" 2>"$work/metrics-again.log" &
again=$!
until grep -q '"storing the scores"' "$work/metrics-again.log"; do
    kill -0 "$again" 2>/dev/null || { echo "setia metrics ended before storing" >&2; exit 1; }
    sleep 0.05
done
"$load_bin" --label webhooks-during-store --url "$base$webhook_path" --secret "$SECRET" \
    --mode open --rate "$WEBHOOK_RATE" --warmup 0 --duration "$store_window" \
    --server-pid "$server" >"$work/webhooks.json"
wait "$again"
kill "$server" && wait "$server" 2>/dev/null || true
server=

echo "4/7 DuckDB peer…" >&2
# setia's scores of every customer, by external id: the model outputs the peer cannot
# compute, and what its R, F, M and segments are compared with.
python3 - "$work/setia.db" "$merchant" "$work/model.parquet" <<'PY'
import sqlite3, sys, duckdb, pandas
database, merchant, out = sys.argv[1:]
connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
connection.execute("ATTACH DATABASE ? AS scores", (f"file:{database}-scores?mode=ro",))
frame = pandas.read_sql_query(
    "SELECT c.external_id, s.rfm_r, s.rfm_f, s.rfm_m, s.segment, s.p_alive, "
    "s.expected_purchases_90d, s.clv_12m_minor FROM scores.customer_scores s "
    "JOIN customers c ON c.id = s.customer_id WHERE s.merchant_id = ?", connection, params=(merchant,))
duckdb.sql("COPY (SELECT * FROM frame) TO '" + out.replace("'", "''") + "' (FORMAT parquet)")
PY
timed duckdb python3 "$here/duckdb_peer.py" "$work/history.csv" "$as_of" "$work/duckdb.json" \
    "$work/model.parquet" "$work/peer-scores.duckdb"
compare_scores "$work/model.parquet" "$work/scores-check.json"

if [ "$POSTGRES_URL" != none ]; then
    echo "5/7 the same on PostgreSQL: merchant create, transactions import, setia metrics twice…" >&2
    scratch_db="setia_bench_metrics_$$"
    psql -q "$POSTGRES_URL" -c "CREATE DATABASE $scratch_db" >/dev/null
    pg=${POSTGRES_URL%/*}/$scratch_db
    pg_merchant=$("$setia" --database-url "$pg" merchant create --name "Toko Bench" --timezone Asia/Jakarta |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    timed pg-import "$setia" --database-url "$pg" transactions import --merchant "$pg_merchant" \
        "$work/history.csv" >"$work/pg-import.json"
    for run in pg-metrics pg-metrics-again; do
        # What autovacuum does on a server that runs it (this machine's does not) by the time a
        # nightly run comes after a bulk load: without statistics the read took 23 s, not 6.
        psql -q "$pg" -c "VACUUM ANALYZE" >/dev/null
        RUST_LOG=info,sqlx=warn,setia::metrics_job=debug timed "$run" "$setia" --database-url "$pg" \
            --log-format json metrics --merchant "$pg_merchant" --as-of "$as_of" \
            >"$work/$run-report.json" 2>"$work/$run.log"
    done
    psql -q "$pg" -c "\\copy (SELECT c.external_id, s.rfm_r, s.rfm_f, s.rfm_m, s.segment \
        FROM customer_scores s JOIN customers c ON c.merchant_id = s.merchant_id AND c.id = s.customer_id \
        WHERE s.merchant_id = '$pg_merchant') TO '$work/pg-scores.csv' WITH (FORMAT csv, HEADER)"
    compare_scores "$work/pg-scores.csv" "$work/pg-scores-check.json"
    psql -q "$POSTGRES_URL" -c "DROP DATABASE $scratch_db WITH (FORCE)" >/dev/null
    scratch_db=
fi

echo "6/7 setia BG/NBD fit on its summary ($FIT_RUNS runs)…" >&2
"$fit_bin" "$work/history.csv" "$as_of" "$work/summary.csv" "$FIT_RUNS" >"$work/fit.json"

echo "7/7 lifetimes peer…" >&2
mode=grouped
[ "$LIFETIMES_PER_CUSTOMER" = 1 ] && mode=per-customer
python3 "$here/lifetimes_peer.py" "$work/summary.csv" "$work/lifetimes.json" "$mode"

python3 -c '
import json, os, sys
json.dump({"customers": int(sys.argv[1]), "purchases_target": int(sys.argv[2]), "seed": int(sys.argv[3]),
           "purchases_generated": json.load(open(sys.argv[4]))["purchases"], "as_of": sys.argv[5],
           "busy_percent": int(sys.argv[6]), "cores": os.cpu_count()}, open(sys.argv[7], "w"))' \
    "$CUSTOMERS" "$PURCHASES" "$SEED" "$work/generate.json" "$as_of" "$busy" "$work/env.json"
python3 "$here/summarise.py" "$work"
