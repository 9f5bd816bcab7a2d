#!/usr/bin/env bash
# Ingest benchmark: setia's Moota webhook endpoint against a bare axum handler, driven by the
# same load generator in the same run. See README.md beside this file.
#
#   bench/ingest/run.sh            # from the repository root (or anywhere)
#
# Five targets, each a server of its own, loaded one at a time with the same scenarios:
#   bare          bare-axum: reads the body, answers 200 received (the peer)
#   bare-fsync    bare-axum --fsync-log: the same, but each 200 waits for a group fdatasync
#                 of the body to a file: the durable floor
#   bare-sqlite   bare-axum --sqlite-inbox: the same, but each 200 waits for a group commit of
#                 the body into a one-table SQLite WAL file: the SQLite floor
#   setia-ingest  `setia serve --no-worker`: the webhook path alone (verify, group commit)
#   setia         `setia serve`: the default, with the in-process worker turning the inbox
#                 into the ledger while the webhooks arrive
# Each setia target has a fresh SQLite file in a temporary folder and a merchant with a known
# secret. After the load, the setia servers are killed with SIGKILL and their inbox must hold
# exactly as many rows as they answered 200 "received".
#
# Knobs (environment): DURATION (measured seconds per scenario, 15), WARMUP (2),
# CONNECTIONS (closed loop, 64), RATE (open loop req/s, 1000), OPEN_CONNECTIONS (64),
# LOAD_THREADS (generator worker threads, 1), MAX_REQUESTS (bodies prepared for a closed
# loop, 1600000), TARGETS ("bare bare-fsync bare-sqlite setia-ingest setia"), WAIT_IDLE (seconds to wait for a quiet
# machine, 0), RETRIES (reruns of a scenario that other processes disturbed, 0), SETIA_BIN (a
# setia binary to use instead of building one), DRAIN_TIMEOUT (seconds `setia serve` may take
# to work off the closed loop's backlog before the open loops, 900), KEEP=1 keeps the
# temporary folder (databases, logs, JSON results).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-1000}
OPEN_CONNECTIONS=${OPEN_CONNECTIONS:-64}
LOAD_THREADS=${LOAD_THREADS:-1}
MAX_REQUESTS=${MAX_REQUESTS:-1600000}
TARGETS=${TARGETS:-bare bare-fsync bare-sqlite setia-ingest setia}
SECRET=bench-webhook-secret-0123456789

echo "building (release)…" >&2
cargo build --release -p setia-bench-ingest >&2
bin=$(release_dir)
setia=$(setia_release)

# The servers and the generator share this machine's cores.
report_busy

work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-ingest.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

declare -A url pid db merchant_id
for target in $TARGETS; do
    case $target in
    bare)
        read -r pid[$target] base < <(start_server "$target" "$bin/bare-axum" --listen 127.0.0.1:0)
        url[$target]=$base/webhooks/moota/mer_bare
        ;;
    bare-fsync)
        read -r pid[$target] base < <(start_server "$target" "$bin/bare-axum" --listen 127.0.0.1:0 --fsync-log "$work/fsync.log")
        url[$target]=$base/webhooks/moota/mer_bare
        ;;
    bare-sqlite)
        read -r pid[$target] base < <(start_server "$target" "$bin/bare-axum" --listen 127.0.0.1:0 --sqlite-inbox "$work/bare-sqlite.db")
        url[$target]=$base/webhooks/moota/mer_bare
        ;;
    setia | setia-ingest)
        db[$target]=$work/$target/setia.db
        created=$("$setia" --database-url "sqlite://${db[$target]}" merchant create --name Bench --webhook-secret "$SECRET")
        merchant_id[$target]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$created")
        path=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["webhook_path"])' "$created")
        flags=()
        [ "$target" = setia-ingest ] && flags=(--no-worker)
        read -r pid[$target] base < <(start_server "$target" "$setia" --database-url "sqlite://${db[$target]}" serve --listen 127.0.0.1:0 "${flags[@]}")
        url[$target]=$base$path
        ;;
    *)
        echo "unknown target $target" >&2
        exit 2
        ;;
    esac
    pids+=("${pid[$target]}")
    echo "$target: ${url[$target]} (pid ${pid[$target]})" >&2
done

# Runs one scenario against one target. When other processes used more than 0.15 of a core
# during the measured window, it is run again (up to RETRIES times, after waiting for a quiet
# machine); every attempt's answers count in the inbox check.
load() { # load TARGET SCENARIO ARGS…
    local target=$1 scenario=$2 attempt=0 other
    shift 2
    while :; do
        attempt=$((attempt + 1))
        "$bin/ingest-load" --label "$target" --url "${url[$target]}" --secret "$SECRET" \
            --threads "$LOAD_THREADS" --warmup "$WARMUP" --duration "$DURATION" \
            --run-id "$scenario$target$attempt" --server-pid "${pid[$target]}" "$@" \
            >"$work/$scenario-$target.try$attempt.json"
        other=$(python3 -c 'import json,sys; print((json.load(open(sys.argv[1])).get("cpu_cores") or {}).get("other") or 0)' \
            "$work/$scenario-$target.try$attempt.json")
        if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0.15 else 1)' "$other" &&
            [ "$attempt" -le "${RETRIES:-0}" ]; then
            echo "  other processes used $other cores: running it again" >&2
            wait_idle
            continue
        fi
        cp "$work/$scenario-$target.try$attempt.json" "$work/$scenario-$target.json"
        return 0
    done
}

# The same scenarios against each target, one target at a time.
for target in $TARGETS; do
    load "$target" closed --mode closed --connections "$CONNECTIONS" --max-requests "$MAX_REQUESTS"
done
# Webhooks go ahead of the worker, so in the closed loop `setia serve` acknowledges faster
# than its worker turns the inbox into the ledger. Before the open loops, such a server
# drains that backlog: catching up would otherwise load the machine under the other targets'
# runs, and its own open loop would measure the drain, not 1,000 webhooks a second.
drain() { # drain TARGET: waits until the inbox has no pending row, and says how long it took
    local target=$1 started=$SECONDS depth first=""
    while :; do
        depth=$(python3 - "${url[$target]%/webhooks/*}/metrics" <<'EOF'
import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    if line.startswith("setia_inbox_depth "):
        print(int(float(line.split()[1])))
EOF
)
        first=${first:-$depth}
        [ "$depth" = 0 ] && break
        if [ $((SECONDS - started)) -ge "${DRAIN_TIMEOUT:-900}" ]; then
            echo "$target: $depth inbox rows still pending after ${DRAIN_TIMEOUT:-900} s" >&2
            exit 1
        fi
        sleep 1
    done
    echo "$target: the worker drained a backlog of $first inbox rows in $((SECONDS - started)) s" |
        tee "$work/drain-$target.txt" >&2
}
for target in $TARGETS; do
    if [ "$target" = setia ]; then drain "$target"; fi
done

for target in $TARGETS; do
    load "$target" open --mode open --rate "$RATE" --connections "$OPEN_CONNECTIONS"
done

# SIGKILL, not SIGTERM, for setia: every 200 "received" must already be on disk, with no
# graceful shutdown to finish the job.
for target in $TARGETS; do
    if [[ $target == bare* ]]; then kill -TERM "${pid[$target]}"; else kill -KILL "${pid[$target]}"; fi
    while kill -0 "${pid[$target]}" 2>/dev/null; do sleep 0.05; done
done
pids=()

counts=()
for target in $TARGETS; do
    [[ $target == bare* ]] && continue
    counts+=("$target=$(python3 - "${db[$target]}" "${merchant_id[$target]}" <<'EOF'
import sqlite3, sys
db, merchant = sys.argv[1:]
c = sqlite3.connect(db)
inbox = c.execute("SELECT count(*) FROM inbox WHERE merchant_id = ?", (merchant,)).fetchone()[0]
audit = c.execute("SELECT count(*) FROM webhook_audit WHERE merchant_id = ? AND status = 200",
                  (merchant,)).fetchone()[0]
pending = c.execute("SELECT count(*) FROM inbox WHERE merchant_id = ? AND state = 'pending'",
                    (merchant,)).fetchone()[0]
print(f"{inbox},{audit},{pending}")
EOF
)")
done

python3 - "$work" "$RATE" "$CONNECTIONS" "$LOAD_THREADS" "$busy" "$TARGETS" "${counts[@]}" <<'EOF'
import json, os, sys
work, rate, connections, threads, busy, targets, *counts = sys.argv[1:]
targets = targets.split()
counts = {c.split("=")[0]: [int(x) for x in c.split("=")[1].split(",")] for c in counts}
r = {}
for scenario in ("closed", "open"):
    for target in targets:
        with open(os.path.join(work, f"{scenario}-{target}.json")) as f:
            r[scenario, target] = json.load(f)

def not_received(x):
    return x["non_200"] + x["errors"] + x["duplicate"] + x["other_200"]

names = {"bare": "bare axum", "bare-fsync": "bare axum + fsync log (durable floor)",
         "bare-sqlite": "bare axum + SQLite inbox (SQLite floor)",
         "setia-ingest": "setia serve --no-worker", "setia": "setia serve"}
print()
print("| scenario | target | req/s | p50 ms | p99 ms | max ms | not 200 received "
      "| CPU server / generator / other | vs bare |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
noisy = []
for scenario, title in (("closed", f"closed loop, {connections} conns"),
                        ("open", f"open loop, {rate} req/s")):
    for target in targets:
        x = r[scenario, target]
        lat = x["latency_ms"]
        ratio = ""
        if target != "bare" and ("bare" in targets):
            b = r[scenario, "bare"]
            if scenario == "closed":
                ratio = f"**{x['requests_per_s'] / b['requests_per_s']:.1%}** of req/s"
            else:
                ratio = f"{lat['p99'] / max(b['latency_ms']['p99'], 1e-9):.1f}× p99"
        cpu = x.get("cpu_cores") or {}
        cpu_text = (f"{cpu['server']:.2f} / {cpu['generator']:.2f} / {cpu['other']:.2f}"
                    if cpu.get("server") is not None else "")
        if cpu.get("other") is not None and cpu["other"] > 0.15:
            noisy.append(f"{scenario} {target} ({cpu['other']:.2f} cores)")
        print(f"| {title} | {names[target]} | {x['requests_per_s']:,.0f} | {lat['p50']:.2f} "
              f"| {lat['p99']:.2f} | {lat['max']:.2f} | {not_received(x)} | {cpu_text} | {ratio} |")
print()
ok = True
for target in targets:
    if target.startswith("bare"):
        continue
    inbox, audit, pending = counts[target]
    # Every attempt's answers, retried scenarios included.
    received = 0
    for name in os.listdir(work):
        if name.endswith(".json") and ".try" in name and name.split(".try")[0].split("-", 1)[1] == target:
            with open(os.path.join(work, name)) as f:
                received += json.load(f)["received_total"]
    exact = inbox == received
    ok &= exact
    print(f"{names[target]}: inbox rows after SIGKILL {inbox}, 200 \"received\" answers {received} "
          f"({'equal' if exact else 'MISMATCH'}); audit rows with status 200 {audit}; "
          f"inbox rows still pending {pending}")
    drained = os.path.join(work, f"drain-{target}.txt")
    if os.path.exists(drained):
        with open(drained) as f:
            print("  " + f.read().strip())
    if "bare" in targets:
        tp = r["closed", target]["requests_per_s"] / r["closed", "bare"]["requests_per_s"]
        clean = exact and all(not_received(r[s, target]) == 0 for s in ("closed", "open"))
        if "bare-fsync" in targets:
            print(f"  of the bare handler: {tp:.1%} (reported; the goal is against the durable floor)")
        else:
            print(f"  goal throughput >= 50% of bare, every 200 committed: "
                  f"{'met' if tp >= 0.5 and clean else 'NOT met'} ({tp:.1%})")
    if "bare-fsync" in targets:
        floor = r["closed", target]["requests_per_s"] / r["closed", "bare-fsync"]["requests_per_s"]
        clean = exact and all(not_received(r[s, target]) == 0 for s in ("closed", "open"))
        print(f"  goal throughput >= 80% of the durable floor (bare axum + fsync log), every 200 "
              f"committed: {'met' if floor >= 0.8 and clean else 'NOT met'} ({floor:.1%})")
    if "bare-sqlite" in targets:
        sqlite = r["closed", target]["requests_per_s"] / r["closed", "bare-sqlite"]["requests_per_s"]
        print(f"  of the SQLite floor (bare axum + SQLite inbox): {sqlite:.1%} (reported)")
    p99 = r["open", target]["latency_ms"]["p99"]
    print(f"  goal p99 < 10 ms at {rate} req/s: {'met' if p99 < 10 else 'NOT met'} ({p99:.2f} ms)")
    # With BENCH_RESULTS set (bench/run.sh), one JSON line per measure, the peer being bare axum.
    if os.environ.get("BENCH_RESULTS"):
        bare = "bare" in targets
        clean = exact and all(not_received(r[s, target]) == 0 for s in ("closed", "open"))
        throughput = r["closed", target]["requests_per_s"]
        bare_throughput = r["closed", "bare"]["requests_per_s"] if bare else None
        fsync = "bare-fsync" in targets
        floor_throughput = r["closed", "bare-fsync"]["requests_per_s"] if fsync else None
        with open(os.environ["BENCH_RESULTS"], "a") as out:
            if fsync:
                out.write(json.dumps({
                    "benchmark": "ingest", "peer": names["bare-fsync"],
                    "measure": f"signed webhooks committed per second against the durable floor, "
                               f"closed loop of {connections} connections, {names[target]}",
                    "unit": "req/s", "setia": throughput, "better": "higher",
                    "peer_value": floor_throughput,
                    "goal": ">= 80% of the durable floor, every 200 committed",
                    "met": throughput >= 0.8 * floor_throughput and clean}) + "\n")
            if "bare-sqlite" in targets:
                out.write(json.dumps({
                    "benchmark": "ingest", "peer": names["bare-sqlite"],
                    "measure": f"signed webhooks committed per second against the SQLite floor, "
                               f"closed loop of {connections} connections, {names[target]}",
                    "unit": "req/s", "setia": throughput, "better": "higher",
                    "peer_value": r["closed", "bare-sqlite"]["requests_per_s"],
                    "goal": "reported (what SQLite alone leaves of the durable floor)",
                    "met": None}) + "\n")
            for line in (
                {"measure": f"signed webhooks committed per second, closed loop of {connections} "
                            f"connections, {names[target]}",
                 "unit": "req/s", "setia": throughput, "better": "higher",
                 "peer_value": bare_throughput,
                 "goal": "reported (the goal is against the durable floor)" if fsync
                         else ">= 50% of the bare handler, every 200 committed",
                 "met": None if fsync or not bare else (throughput >= 0.5 * bare_throughput and clean)},
                {"measure": f"p99 latency at {rate} req/s, open loop, {names[target]}",
                 "unit": "ms", "setia": p99, "better": "lower",
                 "peer_value": r["open", "bare"]["latency_ms"]["p99"] if bare else None,
                 "goal": "< 10 ms", "met": p99 < 10},
            ):
                out.write(json.dumps({"benchmark": "ingest", "peer": "bare axum" if bare else None,
                                      **line}) + "\n")
print("CPU: average cores busy during the measured window, from /proc "
      f"(the machine has {os.cpu_count()})")
if noisy:
    print("WARNING: other processes used the CPU during: " + ", ".join(noisy)
          + "; those figures are skewed")
print(f"load generator: {threads} thread(s); open-loop latencies are from the scheduled send "
      f"time; servers and generator share the machine's {os.cpu_count()} cores "
      f"(busy {busy}% before the run)")
sys.exit(0 if ok else 1)
EOF
