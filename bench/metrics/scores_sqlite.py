"""How fast SQLite stores a million customer scores, written several ways (Python's sqlite3,
the schema of sql/sqlite/0004 and 0006). The experiments behind bench/metrics/README.md's
"Tried and dropped"; setia now writes them in a file of its own (crates/setia-store/src/sqlite/scores.rs).

    python3 bench/metrics/scores_sqlite.py [CUSTOMERS]      # 1000000 by default; a few minutes

Each variant starts from an empty database in a temporary folder (WAL, synchronous FULL,
a 256 MiB page cache as setia's score writer has) and prints its seconds.
"""
import os
import random
import sqlite3
import sys
import tempfile
import time

SCHEMA = """
CREATE TABLE customer_scores (merchant_id TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0,
  customer_id INTEGER NOT NULL, as_of TEXT NOT NULL, recency_days INTEGER NOT NULL,
  frequency_days INTEGER NOT NULL, monetary_minor INTEGER NOT NULL, rfm_r INTEGER NOT NULL,
  rfm_f INTEGER NOT NULL, rfm_m INTEGER NOT NULL, segment TEXT NOT NULL, p_alive REAL,
  expected_purchases_90d REAL, clv_12m_minor INTEGER, computed_at_us INTEGER NOT NULL,
  PRIMARY KEY (merchant_id, generation, customer_id));
CREATE INDEX customer_scores_at_risk ON customer_scores (merchant_id, generation, p_alive);
CREATE INDEX customer_scores_at_risk_by_clv ON customer_scores
  (merchant_id, generation, (COALESCE(clv_12m_minor, -1)) DESC, customer_id)
  WHERE p_alive < 0.5 AND frequency_days >= 2;
CREATE INDEX customer_scores_by_segment ON customer_scores
  (merchant_id, generation, segment, (COALESCE(clv_12m_minor, -1)) DESC, customer_id);
"""
SEGMENTS = ["champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
            "about_to_sleep", "at_risk", "cant_lose", "hibernating"]
MERCHANT = "mer_0123456789abcdefghij"
UPSERT = (
    "INSERT INTO customer_scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (merchant_id, generation, customer_id) DO UPDATE SET as_of = excluded.as_of, "
    "recency_days = excluded.recency_days, frequency_days = excluded.frequency_days, "
    "monetary_minor = excluded.monetary_minor, rfm_r = excluded.rfm_r, rfm_f = excluded.rfm_f, "
    "rfm_m = excluded.rfm_m, segment = excluded.segment, p_alive = excluded.p_alive, "
    "expected_purchases_90d = excluded.expected_purchases_90d, "
    "clv_12m_minor = excluded.clv_12m_minor, computed_at_us = excluded.computed_at_us"
)


def scores(customers, run, generation=0):
    r = random.Random(run)
    return [(MERCHANT, generation, i, "2026-11-26", r.randint(0, 700), r.randint(1, 20),
             r.randint(1000, 10**7), r.randint(1, 5), r.randint(1, 5), r.randint(1, 5),
             r.choice(SEGMENTS), r.random(), r.random() * 3, r.randint(0, 10**8), run)
            for i in range(1, customers + 1)]


def database(folder, synchronous="FULL", drop=()):
    path = os.path.join(folder, f"{time.monotonic_ns()}.db")
    c = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", f"synchronous = {synchronous}",
                   "cache_size = -262144", "temp_store = MEMORY"):
        c.execute(f"PRAGMA {pragma}")
    c.executescript(SCHEMA)
    for index in drop:
        c.execute(f"DROP INDEX {index}")
    return c


def write(c, rows, per_transaction):
    started = time.monotonic()
    for k in range(0, len(rows), per_transaction):
        c.execute("BEGIN IMMEDIATE")
        c.executemany(UPSERT, rows[k:k + per_transaction])
        c.execute("COMMIT")
    return time.monotonic() - started


def main():
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    part = 10_000
    secondary = ("customer_scores_at_risk", "customer_scores_at_risk_by_clv",
                 "customer_scores_by_segment")
    by_segment = lambda row: (row[10], -row[13], row[2])
    with tempfile.TemporaryDirectory() as folder:
        rows = scores(customers, 1)
        print(f"transactions of {part:,} (as setia does): "
              f"{write(database(folder), rows, part):.1f} s", flush=True)
        print(f"one transaction: {write(database(folder), rows, customers):.1f} s", flush=True)
        print(f"only the primary key, one transaction: "
              f"{write(database(folder, drop=secondary), rows, customers):.1f} s", flush=True)
        print(f"synchronous NORMAL, transactions of {part:,}: "
              f"{write(database(folder, 'NORMAL'), rows, part):.1f} s", flush=True)
        c = database(folder, drop=secondary[:1])
        first = write(c, sorted(rows, key=by_segment), part)
        again = write(c, sorted(scores(customers, 2), key=by_segment), part)
        print(f"sorted by segment and CLV, no p_alive index: first {first:.1f} s, "
              f"upsert {again:.1f} s", flush=True)
        c = database(folder, drop=secondary[:1])
        write(c, sorted(rows, key=by_segment), part)
        new = write(c, sorted(scores(customers, 2, generation=1), key=by_segment), part)
        started = time.monotonic()
        while True:
            c.execute("BEGIN IMMEDIATE")
            deleted = c.execute(
                "DELETE FROM customer_scores WHERE rowid IN (SELECT rowid FROM customer_scores "
                "WHERE merchant_id = ? AND generation = 0 LIMIT ?)", (MERCHANT, part)).rowcount
            c.execute("COMMIT")
            if deleted == 0:
                break
        print(f"a new generation beside the old: insert {new:.1f} s, "
              f"old deleted {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
