"""Per-thread CPU of a running process over a few seconds, from /proc/PID/task.

    python3 bench/ingest/threads.py PID [SECONDS]

Run it against `setia serve` while `bench/ingest/run.sh` (or `ingest-load`) loads it: it
prints each thread busier than 1% of a core, e.g. the sqlx-sqlite writer and the tokio workers.
"""
import os
import sys
import time


def snapshot(pid):
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        threads[tid] = (name, int(fields[11]) + int(fields[12]))  # utime + stime, in ticks
    return threads


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    pid, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 4.0
    before = snapshot(pid)
    time.sleep(seconds)
    after = snapshot(pid)
    ticks = os.sysconf("SC_CLK_TCK")
    for tid, (name, used) in sorted(after.items()):
        if tid in before:
            cores = (used - before[tid][1]) / ticks / seconds
            if cores > 0.01:
                print(f"{name} {tid} {cores:.2f} cores")


if __name__ == "__main__":
    main()
