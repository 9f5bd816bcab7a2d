#!/usr/bin/env bash
# Recommendation benchmark: setia's recommender against a popularity baseline on a
# leave-last-order-out split of sandbox baskets, and the recommendation step's time and peak
# memory at 1 M customers / 10 M lines. See README.md beside this file.
#
#   bench/recommend/run.sh           # from the repository root (or anywhere)
#
# Steps (recommend-bench, src/main.rs here, built in release):
#   1. quality: CUSTOMERS customers and PURCHASES purchases drawn as `setia sandbox generate`
#      draws them, their items with setia_sandbox::write_items_csv, the last purchase of
#      every customer with two or more hidden; hit rate@10 and recall@10 of
#      setia_analytics::recommend and of the popularity baseline on the same split
#   2. speed: SPEED_CUSTOMERS customers, SPEED_PURCHASES purchases (about 10 M lines),
#      `recommend` on every line, its seconds and the process's peak RSS during the call
#   3. nightly: the same SPEED_* history written by `setia sandbox generate --items-out`,
#      imported into SQLite; `setia metrics` timed without order lines (the second run, as
#      the nightly job runs it, scores updated in place), then after `setia items import`
#      with them (the second run again): the whole nightly run with and without
#      recommendations
#   4. prints the summary and, when BENCH_RESULTS is set, appends one JSON line per measure
#
# Knobs (environment): CUSTOMERS (100000), PURCHASES (1000000), SPEED_CUSTOMERS (1000000),
# SPEED_PURCHASES (4500000; 0 skips the speed and nightly runs), NIGHTLY (1; 0 skips the
# nightly run), SEED (42), WAIT_IDLE (seconds to wait for a quiet machine, 0), RECOMMEND_BIN
# and SETIA_BIN (binaries to use instead of building them), KEEP=1 keeps the work folder,
# BENCH_RESULTS (a file to append the JSON results to).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
. "$root/bench/common.sh"

CUSTOMERS=${CUSTOMERS:-100000}
PURCHASES=${PURCHASES:-1000000}
SPEED_CUSTOMERS=${SPEED_CUSTOMERS:-1000000}
SPEED_PURCHASES=${SPEED_PURCHASES:-4500000}
SEED=${SEED:-42}

NIGHTLY=${NIGHTLY:-1}
[ "$SPEED_PURCHASES" = 0 ] && NIGHTLY=0

if [ -z "${RECOMMEND_BIN:-}" ] || { [ "$NIGHTLY" = 1 ] && [ -z "${SETIA_BIN:-}" ]; }; then
    echo "building recommend-bench and setia (release)…" >&2
    # One cargo call, so Polars is built once.
    cargo build --release -p setia-bench-recommend -p setia --bin recommend-bench --bin setia >&2
fi
bench=${RECOMMEND_BIN:-$(release_dir)/recommend-bench}
setia=${SETIA_BIN:-$(release_dir)/setia}

work=$(mktemp -d "${TMPDIR:-/tmp}/setia-bench-recommend.XXXXXX")
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

report_busy
busy_quality=$busy
echo "1/2 quality: $CUSTOMERS customers, $PURCHASES purchases, seed $SEED…" >&2
"$bench" --mode quality --customers "$CUSTOMERS" --purchases "$PURCHASES" --seed "$SEED" \
    --json >"$work/quality.json"

if [ "$SPEED_PURCHASES" != 0 ]; then
    report_busy
    busy_speed=$busy
    echo "2/2 speed: $SPEED_CUSTOMERS customers, $SPEED_PURCHASES purchases, seed $SEED…" >&2
    "$bench" --mode speed --customers "$SPEED_CUSTOMERS" --purchases "$SPEED_PURCHASES" \
        --seed "$SEED" --json >"$work/speed.json"
fi

if [ "$NIGHTLY" = 1 ]; then
    command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >&2
    timed() { # NAME COMMAND…: wall time and peak RSS into $work/NAME.time
        local name=$1
        shift
        /usr/bin/time -o "$work/$name.time" -f '{"seconds": %e, "max_rss_kb": %M}' "$@"
    }
    metrics() { # NAME: one `setia metrics` run, timed, with its phases logged
        RUST_LOG=info,sqlx=warn,setia::metrics_job=debug timed "$1" "$setia" --log-format json \
            metrics --merchant "$merchant" >/dev/null 2>"$work/$1.log"
    }
    export SETIA_DATABASE_URL="sqlite://$work/setia.db"
    echo "3/3 nightly: generate and import $SPEED_CUSTOMERS customers, $SPEED_PURCHASES purchases…" >&2
    "$setia" sandbox generate --customers "$SPEED_CUSTOMERS" --purchases "$SPEED_PURCHASES" \
        --seed "$SEED" --out "$work/history.csv" --items-out "$work/items.csv" >"$work/generate.json"
    merchant=$("$setia" merchant create --name "Toko Bench" --timezone Asia/Jakarta |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    "$setia" transactions import --merchant "$merchant" "$work/history.csv" >/dev/null
    metrics nightly-first
    report_busy
    busy_nightly=$busy
    echo "   setia metrics without order lines…" >&2
    metrics nightly-without
    echo "   setia items import…" >&2
    timed items-import "$setia" items import --merchant "$merchant" "$work/items.csv" >"$work/items-import.json"
    metrics nightly-with-first
    echo "   setia metrics with order lines…" >&2
    metrics nightly-with
fi

python3 - "$work" "$busy_quality" "${busy_speed:-0}" "${BENCH_RESULTS:-}" "${busy_nightly:-0}" <<'PY'
import json, os, sys

work, busy_quality, busy_speed, results = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
busy_nightly = int(sys.argv[5])
lines = []

def measure(name, unit, setia, peer, peer_value, better, goal, met):
    lines.append({"benchmark": "recommend", "measure": name, "unit": unit, "setia": setia,
                  "peer": peer, "peer_value": peer_value, "better": better, "goal": goal,
                  "met": met})

q = json.load(open(os.path.join(work, "quality.json")))["quality"]
s_, p_ = q["setia"], q["popularity"]
size = f"{q['customers']:,} customers, {q['lines']:,} lines"
print(f"\nrecommendation quality, leave-last-order-out ({size}; "
      f"{q['evaluated_customers']:,} customers evaluated; machine {busy_quality}% busy at the start)")
print("| recommender | hit rate@10 | recall@10 |")
print("|---|--:|--:|")
print(f"| setia | {s_['hit_rate']:.4f} | {s_['recall']:.4f} |")
print(f"| popularity (not yet bought) | {p_['hit_rate']:.4f} | {p_['recall']:.4f} |")
print(f"| setia ÷ popularity | {q['hit_rate_ratio']}× | {q['recall_ratio']}× |")
print(f"hidden products the customer had bought before: {q['hidden_products_bought_before']:.1%}; "
      f"recommend took {q['recommend_seconds']} s")
if q["customers_without_recommendations"]:
    print(f"WARNING: {q['customers_without_recommendations']} evaluated customers got no recommendations")
ratio = q["hit_rate_ratio"]
peer = "popularity (not yet bought)"
percent = lambda share: round(100 * share, 2)
measure(f"hit rate@10, leave-last-order-out, {size}", "%", percent(s_["hit_rate"]), peer,
        percent(p_["hit_rate"]), "higher", "≥ 1.5× popularity", None if ratio is None else ratio >= 1.5)
measure(f"recall@10, leave-last-order-out, {size}", "%", percent(s_["recall"]), peer,
        percent(p_["recall"]), "higher", "reported only", None)

speed_path = os.path.join(work, "speed.json")
if os.path.exists(speed_path):
    s = json.load(open(speed_path))["speed"]
    # The goals are stated for 1 M customers and 10 M lines: judged only at that size.
    full = s["customers"] >= 1_000_000 and s["lines"] >= 9_500_000
    size = f"{s['customers']:,} customers, {s['lines']:,} lines"
    print(f"\nrecommendation step ({size}): {s['recommend_seconds']} s, peak RSS "
          f"{s['peak_rss_mib']} MiB (resident before the call {s['rss_before_mib']} MiB); "
          f"goals < 30 s and < 2 GiB{'' if full else ' (not judged: smaller than 1 M / 10 M)'}; "
          f"machine {busy_speed}% busy at the start")
    measure(f"recommend, {size}", "s", s["recommend_seconds"], None, None, "lower",
            "< 30 s at 1 M customers / 10 M lines", (s["recommend_seconds"] < 30) if full else None)
    peak = s["peak_rss_mib"]
    if peak is not None:
        measure(f"recommend peak RSS, {size}", "MiB", peak, None, None, "lower",
                "< 2 GiB", (peak < 2048) if full else None)

def phases(name):
    """The wall time of a `setia metrics` run and the phases its debug line logs."""
    timing = json.load(open(os.path.join(work, name + ".time")))
    for line in open(os.path.join(work, name + ".log")):
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "metrics run":
            return timing, fields
    return timing, {}

if os.path.exists(os.path.join(work, "nightly-with.time")):
    (without, w_phases), (with_, r_phases) = phases("nightly-without"), phases("nightly-with")
    imported = json.load(open(os.path.join(work, "items-import.json")))
    import_time = json.load(open(os.path.join(work, "items-import.time")))["seconds"]
    ratio = round(with_["seconds"] / without["seconds"], 2)
    size = f"{r_phases.get('customers', 0):,} customers, {imported['inserted']:,} lines"
    print(f"\nnightly run, `setia metrics` on SQLite ({size}; machine {busy_nightly}% busy at the start)")
    print("| run | wall s | read s | batch s | recommend s | store s | peak RSS MiB |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for label, t, p in (("without order lines", without, w_phases), ("with order lines", with_, r_phases)):
        f = lambda k: f"{p[k]:.1f}" if isinstance(p.get(k), (int, float)) else "–"
        print(f"| {label} | {t['seconds']:.1f} | {f('read_seconds')} | {f('compute_seconds')} | "
              f"{f('recommend_seconds')} | {f('save_seconds')} | {t['max_rss_kb'] // 1024} |")
    print(f"with ÷ without: {ratio}× (goal ≤ 2×); `setia items import` of the lines took {import_time:.1f} s")
    measure(f"nightly run with recommendations, {size}", "s", with_["seconds"],
            "the same run without order lines", without["seconds"], "lower", "≤ 2× without",
            ratio <= 2)

if results:
    with open(results, "a") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
PY
