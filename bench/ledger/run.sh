#!/usr/bin/env bash
# Ledger benchmark (issue #4): webhook 200 -> purchase and points visible under a steady load,
# and worker throughput, on SQLite and on PostgreSQL. See README.md beside this file.
#
#   bench/ledger/run.sh
#
# Knobs (environment): RATE (webhooks/s, 200), DURATION (measured seconds, 30), WARMUP (3),
# CUSTOMERS (1000), ROWS (inbox rows for the throughput run, 20000), WORKERS_PG (workers
# side by side on PostgreSQL, 2), POSTGRES_URL (a server where a scratch database may be
# created; postgres://postgres@127.0.0.1:5432/postgres; "none" skips PostgreSQL),
# SETIA_BIN (a setia binary to use instead of building one), KEEP=1 keeps the work folder.
# With BENCH_RESULTS=FILE it appends its measures to FILE as JSON lines (bench/run.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

RATE=${RATE:-200}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-3}
CUSTOMERS=${CUSTOMERS:-1000}
ROWS=${ROWS:-20000}
WORKERS_PG=${WORKERS_PG:-2}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SECRET=bench-webhook-secret-0123456789

echo "building (release)…" >&2
cargo build --release -p setia-bench-ledger >&2
bench=$(release_dir)/ledger-bench
setia=$(setia_release)

work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-ledger.XXXXXX")
server=""
scratch_db=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    if [ -n "$scratch_db" ]; then
        psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $scratch_db" >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# A merchant with the known secret and CUSTOMERS customers, each with a virtual account.
prepare() { # prepare DATABASE_URL  -> sets $merchant and $path
    local created
    created=$("$setia" --database-url "$1" merchant create --name "Toko Bench" --timezone Asia/Jakarta --webhook-secret "$SECRET")
    merchant=$(json_field "$created" id)
    path=$(json_field "$created" webhook_path)
    "$bench" customers --count "$CUSTOMERS" --out "$work/customers.csv" >/dev/null
    "$setia" --database-url "$1" customers import --merchant "$merchant" "$work/customers.csv" >/dev/null
}

latency_run() { # latency_run NAME DATABASE_URL
    local name=$1 url=$2 base
    prepare "$url"
    "$setia" --database-url "$url" serve --listen 127.0.0.1:0 >"$work/$name-serve.out" 2>"$work/$name-serve.log" &
    server=$!
    for _ in $(seq 1 300); do [ -s "$work/$name-serve.out" ] && break; sleep 0.1; done
    base=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/$name-serve.out")
    echo "$name: setia serve at $base, $RATE webhooks/s for ${DURATION}s after ${WARMUP}s" >&2
    "$bench" latency --url "$base$path" --secret "$SECRET" --database-url "$url" --merchant "$merchant" \
        --customers "$CUSTOMERS" --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" >"$work/$name-latency.json"
    kill -TERM "$server"
    wait "$server" 2>/dev/null || true
    server=""
    cat "$work/$name-latency.json" >&2
}

throughput_run() { # throughput_run NAME DATABASE_URL WORKERS
    local name=$1 url=$2 workers=$3
    prepare "$url"
    echo "$name: worker throughput over $ROWS inbox rows, $workers worker(s)" >&2
    "$bench" throughput --database-url "$url" --merchant "$merchant" --customers "$CUSTOMERS" \
        --rows "$ROWS" --workers "$workers" >"$work/$name-throughput.json"
    cat "$work/$name-throughput.json" >&2
}

latency_run sqlite "sqlite://$work/latency.db"
throughput_run sqlite "sqlite://$work/throughput.db" 1

backends=(sqlite)
if [ "$POSTGRES_URL" != none ]; then
    scratch_db="setia_bench_ledger_$$"
    psql -q "$POSTGRES_URL" -c "CREATE DATABASE $scratch_db" >/dev/null
    pg=${POSTGRES_URL%/*}/$scratch_db
    latency_run postgres "$pg"
    psql -q "$POSTGRES_URL" -c "DROP DATABASE $scratch_db WITH (FORCE)" >/dev/null
    psql -q "$POSTGRES_URL" -c "CREATE DATABASE $scratch_db" >/dev/null
    throughput_run postgres "$pg" "$WORKERS_PG"
    backends+=(postgres)
fi

python3 - "$work" "$RATE" "${BENCH_RESULTS:-}" "${backends[@]}" <<'PY'
import json, os, sys
work, rate, results, *backends = sys.argv[1:]
lines, rows = [], []
for b in backends:
    lat = json.load(open(os.path.join(work, f"{b}-latency.json")))
    thr = json.load(open(os.path.join(work, f"{b}-throughput.json")))
    ms = lat["latency_ms"] or {}
    ok = lat["failures"] == 0 and lat["never_visible"] == 0 and lat["customers_without_points"] == 0
    rows.append(f"| {b} | {rate}/s | {lat['measured']} | {ms.get('p50')} | {ms.get('p99')} | {ms.get('max')} "
                f"| {lat['never_visible']} | {thr['workers']} | {thr['mutations_per_second']:.0f} |")
    lines.append({"benchmark": "ledger", "measure": f"webhook 200 -> purchase visible p99, {rate}/s, {b}",
                  "unit": "ms", "setia": ms.get("p99"), "peer": None, "peer_value": None,
                  "better": "lower", "goal": "< 50 ms", "met": bool(ok and ms.get("p99") is not None and ms["p99"] < 50)})
    lines.append({"benchmark": "ledger", "measure": f"worker throughput, {b}, {thr['workers']} worker(s)",
                  "unit": "mutations/s", "setia": thr["mutations_per_second"], "peer": None, "peer_value": None,
                  "better": "higher", "goal": "(none set)", "met": None})
print("| database | load | measured | p50 ms | p99 ms | max ms | never visible | workers | mutations/s |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
print("\n".join(rows))
if results:
    with open(results, "a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
PY
