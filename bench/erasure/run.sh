#!/usr/bin/env bash
# A customer's erasure against a large inbox: one merchant with BODIES stored webhook bodies
# (SQLite), a customer who paid PAYMENTS times through the real webhook, and the wall time of
# `setia customers erase`, whose search reads the merchant's whole inbox. See README.md
# beside this file.
#
#   bench/erasure/run.sh        # from the repository root (or anywhere)
#
# Knobs (environment): BODIES (1000000), PAYMENTS ("1 100": one customer per count, each
# erased on the same inbox), SETIA_BIN (a setia binary instead of a release build),
# WAIT_IDLE, KEEP=1 (keeps the work folder), BENCH_RESULTS (a file to append the JSON
# results to).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

BODIES=${BODIES:-1000000}
PAYMENTS=${PAYMENTS:-1 100}
secret=AElSnSQj

setia=$(setia_release)
work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-erasure.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
export SETIA_DATABASE_URL="sqlite://$work/setia.db"

merchant=$("$setia" merchant create --name Toko --webhook-secret "$secret" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
{
    echo "external_id,name,payer_names"
    # Payer names are words: the count's digits as letters (100: BAA).
    for count in $PAYMENTS; do echo "C-$count,Pembeli $count,PEMBELI $(echo "$count" | tr 0-9 A-J)"; done
} >"$work/customers.csv"
"$setia" customers import --merchant "$merchant" "$work/customers.csv" >/dev/null

echo "1/3 the customers' payments through the webhook…" >&2
"$setia" serve --listen 127.0.0.1:0 --no-scheduler >"$work/serve.out" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
url=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/serve.out")
python3 - "$url" "$merchant" "$secret" $PAYMENTS <<'PY'
import datetime, hashlib, hmac, json, sys, time, urllib.request
url, merchant, secret, counts = sys.argv[1], sys.argv[2], sys.argv[3], [int(c) for c in sys.argv[4:]]
date = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
for count in counts:
    body = json.dumps([{"mutation_id": f"M-{count}-{j}", "account_number": "1234567890", "date": date,
        "description": "TRSF E-BANKING CR PEMBELI " + str(count).translate(str.maketrans("0123456789", "ABCDEFGHIJ")), "note": "", "amount": 150000 + j,
        "type": "CR", "balance": 0, "bank": {"bank_type": "bca"}} for j in range(count)]).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{url}/webhooks/moota/{merchant}", data=body, headers={"Signature": signature})
    urllib.request.urlopen(request).read()
PY
# Wait until every payment is a purchase.
expected=0
for count in $PAYMENTS; do expected=$((expected + count)); done
for _ in $(seq 1 600); do
    purchases=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM purchases WHERE customer_id IS NOT NULL").fetchone()[0])' "$work/setia.db")
    [ "$purchases" -ge "$expected" ] && break
    sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || true
pid=

echo "2/3 $BODIES other stored bodies…" >&2
python3 - "$work/setia.db" "$merchant" "$BODIES" <<'PY'
import hashlib, json, os, sqlite3, sys, time
path, merchant, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path)
started = time.time()
def rows():
    for i in range(n):
        body = json.dumps([{"mutation_id": f"M-OTHER-{i:08d}", "account_number": "1234567890",
            "date": "2026-11-01 10:00:00", "description": f"TRSF E-BANKING CR 0111/FTSCY/WS95051 {100000 + i}.00 LAIN {i}",
            "note": "", "amount": 100000 + i, "type": "CR", "balance": 0,
            "bank": {"bank_type": "bca", "label": "BCA", "atas_nama": "TOKO SEJAHTERA", "account_number": "1234567890"}}]).encode()
        yield (merchant, body, hashlib.sha256(body).hexdigest(), len(body), "127.0.0.1", 1700000000000000 + i, "done")
db.executemany("INSERT INTO inbox (merchant_id, body, body_sha256, body_size, remote_addr, received_at_us, state) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(f"  {n} bodies in {time.time() - started:.1f} s; file {os.path.getsize(path) / 2**20:.0f} MiB", file=sys.stderr)
PY

echo "3/3 erasures…" >&2
report_busy
: >"$work/results.tsv"
for count in $PAYMENTS; do
    started=$(date +%s.%N)
    "$setia" customers erase --merchant "$merchant" "C-$count" >"$work/erasure-$count.json"
    seconds=$(python3 -c "import time; print(round(time.time() - $started, 2))")
    python3 - "$work/erasure-$count.json" "$count" <<'PY'
import json, sys
erasure, count = json.load(open(sys.argv[1])), int(sys.argv[2])
assert erasure["purchases"] == count and erasure["mutations"] == count and erasure["inbox_bodies"] == 1, erasure
PY
    echo "  customer with $count payment(s): erased in $seconds s" >&2
    printf '%s\t%s\n' "$count" "$seconds" >>"$work/results.tsv"
done

if [ -n "${BENCH_RESULTS:-}" ]; then
    python3 - "$work/results.tsv" "$BODIES" "$BENCH_RESULTS" <<'PY'
import json, sys
results, bodies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(out, "a") as sink:
    for line in open(results):
        count, seconds = line.split()
        sink.write(json.dumps({
            "benchmark": "erasure",
            "measure": f"setia customers erase, a customer with {count} payment(s), {bodies:,} stored bodies (SQLite)",
            "unit": "s", "setia": float(seconds), "peer": None, "peer_value": None,
            "better": "lower", "goal": "", "met": None}) + "\n")
PY
fi
