#!/usr/bin/env bash
# Email benchmark: 100,000 customers with a birthday today. Enqueue and render rate, then
# delivery rate into a local SMTP server (aiosmtpd, receiver.py beside this file)
# through lettre's pooled transport. See README.md beside this file.
#
#   bench/mail/run.sh                      # SQLite (a fresh file)
#   DATABASE_URL=postgres://… bench/mail/run.sh
#
# Knobs (environment): CUSTOMERS (100000), CONNECTIONS (16), BATCH (200), DATABASE_URL.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

CUSTOMERS=${CUSTOMERS:-100000}
CONNECTIONS=${CONNECTIONS:-16}
BATCH=${BATCH:-200}

python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd

echo "building (release)…" >&2
cargo build --release -p setia-bench-mail >&2
release=$(release_dir)

spool=$(mktemp -d)
python3 "$here/receiver.py" --spool "$spool" > "$spool/ready" &
receiver=$!
trap 'kill $receiver 2>/dev/null || true; rm -rf "$spool"' EXIT
for _ in $(seq 1 50); do [ -s "$spool/ready" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$spool/ready")

args=(--customers "$CUSTOMERS" --smtp-url "smtp://127.0.0.1:$port" --connections "$CONNECTIONS" --batch "$BATCH")
if [ -n "${DATABASE_URL:-}" ]; then args+=(--database-url "$DATABASE_URL"); fi
"$release/mail-bench" "${args[@]}" | tee "$spool/result.json"

kill -TERM $receiver; wait $receiver 2>/dev/null || true
accepted=$(cat "$spool/count" 2>/dev/null || echo '?')
echo "SMTP server accepted: $accepted messages" >&2

# With BENCH_RESULTS set (bench/run.sh), one JSON line per measure. There is no peer. The
# goals are issue 8's, stated for 100,000 customers: a smaller run does not judge them (met is
# null); delivery counts as met only if the SMTP server accepted every email.
if [ -n "${BENCH_RESULTS:-}" ]; then
  python3 - "$spool/result.json" "$accepted" >>"$BENCH_RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
accepted = int(sys.argv[2]) if sys.argv[2].isdigit() else None
n, d = r["customers"], r["deliver"]
full = n >= 100_000
def line(measure, unit, value, goal="", met=None):
    print(json.dumps({"benchmark": "mail", "measure": measure, "unit": unit, "setia": value,
                      "peer": None, "peer_value": None, "better": "higher", "goal": goal,
                      "met": met}, ensure_ascii=False))
line(f"birthday offers enqueued and rendered, {n:,} customers on {r['database']}", "emails/s",
     r["enqueue_and_render_per_second"], "≥ 10,000 emails/s at 100,000 customers",
     r["enqueue_and_render_per_second"] >= 10_000 if full else None)
line("birthday offers enqueued, with their points", "emails/s", r["enqueue"]["per_second"])
line("birthday offers rendered", "emails/s", r["render"]["per_second"])
line(f"delivered to a local SMTP server, {d['connections']} connections", "emails/s",
     d["per_second"], "≥ 500 emails/s at 100,000 customers, every email accepted",
     (d["per_second"] >= 500 and d["sent"] == n and accepted == n) if full else None)
PY
fi
