# Sourced by the bench/*/run.sh scripts: what they all need besides their own load.

# The cargo target folder's release directory (CARGO_TARGET_DIR or the workspace's own).
release_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"] + "/release")'
}

# The setia binary to measure: SETIA_BIN, or a release build of this checkout.
setia_release() {
    if [ -n "${SETIA_BIN:-}" ]; then
        echo "$SETIA_BIN"
    else
        cargo build --release --bin setia >&2
        echo "$(release_dir)/setia"
    fi
}

# Percent of all cores busy over one second, from /proc/stat.
busy_percent() {
    python3 -c '
import time
def stat():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v), v[3] + v[4]
t0, i0 = stat(); time.sleep(1); t1, i1 = stat()
print(round(100 * (1 - (i1 - i0) / max(t1 - t0, 1))))'
}

# Sets $busy, waiting up to WAIT_IDLE seconds for the machine to quiet down: the benchmark
# and its peer share the cores with whatever else runs, which skews the figures.
wait_idle() {
    busy=$(busy_percent)
    local waited=0
    while [ "$busy" -gt 10 ] && [ "$waited" -lt "${WAIT_IDLE:-0}" ]; do
        sleep 4
        waited=$((waited + 5))
        busy=$(busy_percent)
    done
}

# wait_idle, then says how busy the machine is, with a warning when it is not quiet.
report_busy() {
    wait_idle
    echo "machine busy before the run: ${busy}% of $(nproc) cores" >&2
    if [ "$busy" -gt 10 ]; then
        echo "WARNING: other processes are using the CPU; the figures will be skewed" >&2
    fi
}

# Starts a server (logs in $work/NAME.out and .log), waits for its {"listening":"http://…"} line and prints its pid and URL.
start_server() { # start_server NAME COMMAND…
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.log" &
    local pid=$!
    for _ in $(seq 1 300); do
        if [ -s "$work/$name.out" ]; then
            echo "$pid $(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/$name.out")"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "$name died; see $work/$name.log" >&2; return 1; }
        sleep 0.1
    done
    echo "$name did not start within 30 s" >&2
    return 1
}
