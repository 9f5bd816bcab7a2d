#!/usr/bin/env python3
"""The DuckDB peer of `setia metrics`: the shared part of the metrics suite from the import CSV.

    duckdb_peer.py HISTORY.csv AS_OF OUT.json [MODEL.parquet SCORES.duckdb]

Computes, as DESIGN.md §4 defines them and from the same CSV that `setia transactions import`
read: the totals (customers, purchases, revenue, repeat customers, repeat purchase rate, median
days between purchase days), the monthly cohorts (size, retention, retention_unbounded, revenue
per period) and the RFM quintile scores of every customer with the ten segment counts.

The purchase day is the date of `occurred_at`, which the import format gives in merchant time
(the benchmark merchant is Asia/Jakarta, the generator writes local wall times), so no zone
conversion is needed here. Amounts are read as DECIMAL(18,2) and summed as integer sen, as
setia does. RFM ties are broken by customer id: the generator numbers customers C0000001,
C0000002, … in the order they first appear in the file, which is the order in which the import
creates them, so ordering by the zero-padded external id is ordering by setia's customer id.

What is timed ("total"): reading and parsing the CSV into a DuckDB table, every query, and
assembling the results in Python. Not timed: starting Python and importing duckdb, writing
OUT.json. The phases are timed too (csv, totals, cohorts, rfm).

With MODEL.parquet and SCORES.duckdb, the peer also stores the per-customer scores as setia's
nightly run does ("store", and "end_to_end" = total + store): one row per customer in a table
of the fresh file SCORES.duckdb with its recency, frequency and monetary value, its R, F and M
scores and segment (computed here), and its P(alive), expected purchases in 90 days and
12-month CLV. DuckDB has no BG/NBD or Gamma-Gamma model, so those three come from MODEL.parquet
(setia's own values for each customer, exported by run.sh); reading that file is timed.
"""

import json
import sys
import time

import duckdb


def bins(rank: str, span: str) -> str:
    """The quintile bin (0..4) of a 0-based rank among span+1 values, as setia's rfm.rs."""
    return " + ".join(f"(5 * {rank} > {k} * {span})::INTEGER" for k in range(1, 5))


SEGMENT = """
CASE
  WHEN r = 5 AND f >= 4 THEN 'champions'
  WHEN r BETWEEN 3 AND 4 AND f >= 4 THEN 'loyal'
  WHEN r >= 4 AND f BETWEEN 2 AND 3 THEN 'potential_loyalists'
  WHEN r = 5 AND f = 1 THEN 'new_customers'
  WHEN r = 4 AND f = 1 THEN 'promising'
  WHEN r = 3 AND f = 3 THEN 'need_attention'
  WHEN r = 3 AND f <= 2 THEN 'about_to_sleep'
  WHEN r <= 2 AND f BETWEEN 3 AND 4 THEN 'at_risk'
  WHEN r <= 2 AND f = 5 THEN 'cant_lose'
  ELSE 'hibernating'
END"""

SEGMENTS = [
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
]


def month_index(expr: str) -> str:
    return f"(year({expr}) * 12 + month({expr}) - 1)"


def main() -> None:
    if len(sys.argv) not in (4, 6):
        sys.exit(__doc__)
    path, as_of, out = sys.argv[1:4]
    model, scores_file = sys.argv[4:6] if len(sys.argv) == 6 else (None, None)
    con = duckdb.connect()  # in memory, every core (the default)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    phases = {}

    started = time.perf_counter()
    mark = started
    con.execute(
        f"""
        CREATE TEMP TABLE purchases AS
        SELECT customer_external_id AS customer,
               CAST(occurred_at AS DATE) AS day,
               CAST(amount * 100 AS BIGINT) AS sen
        FROM read_csv(?, header = true, types = {{
            'customer_external_id': 'VARCHAR', 'occurred_at': 'TIMESTAMP',
            'amount': 'DECIMAL(18,2)'}})
        WHERE CAST(occurred_at AS DATE) <= DATE '{as_of}'
        """,
        [path],
    )
    phases["csv"] = time.perf_counter() - mark

    mark = time.perf_counter()
    # Purchase days, then one row per customer.
    con.execute(
        """
        CREATE TEMP TABLE days AS
        SELECT customer, day, sum(sen) AS sen, count(*) AS purchases
        FROM purchases GROUP BY customer, day
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE customers AS
        SELECT customer, min(day) AS first_day, max(day) AS last_day,
               count(*) AS active_days, sum(purchases) AS purchases, sum(sen) AS revenue
        FROM days GROUP BY customer
        """
    )
    customers, purchases, revenue, repeat = con.execute(
        """
        SELECT count(*), sum(purchases), sum(revenue), count(*) FILTER (WHERE active_days >= 2)
        FROM customers
        """
    ).fetchone()
    (median_gap,) = con.execute(
        """
        SELECT quantile_cont(gap, 0.5) FROM (
            SELECT day - lag(day) OVER (PARTITION BY customer ORDER BY day) AS gap FROM days
        ) WHERE gap IS NOT NULL
        """
    ).fetchone()
    totals = {
        "customers": int(customers),
        "purchases": int(purchases),
        "revenue_sen": int(revenue),
        "repeat_customers": int(repeat),
        "repeat_purchase_rate": repeat / customers if customers else 0.0,
        "median_days_between_purchases": None if median_gap is None else float(median_gap),
    }
    phases["totals"] = time.perf_counter() - mark

    mark = time.perf_counter()
    as_of_period = con.execute(f"SELECT {month_index(f'DATE {as_of!r}')}").fetchone()[0]
    con.execute(
        f"""
        CREATE TEMP TABLE cohort_of AS
        SELECT customer, {month_index('first_day')} AS cohort,
               {month_index('last_day')} - {month_index('first_day')} AS last_offset
        FROM customers
        """
    )
    activity = con.execute(
        f"""
        WITH periods AS (
            SELECT customer, {month_index('day')} AS period, sum(sen) AS sen
            FROM days GROUP BY customer, period
        )
        SELECT c.cohort, p.period - c.cohort AS k, count(*) AS active, sum(p.sen) AS sen
        FROM periods p JOIN cohort_of c USING (customer)
        GROUP BY c.cohort, k
        """
    ).fetchall()
    sizes = con.execute(
        "SELECT cohort, last_offset, count(*) FROM cohort_of GROUP BY cohort, last_offset"
    ).fetchall()
    cohorts = {}
    for cohort, last_offset, n in sizes:
        span = as_of_period - cohort + 1
        row = cohorts.setdefault(
            cohort, {"size": 0, "active": [0] * span, "revenue": [0] * span, "last": [0] * span}
        )
        row["size"] += n
        row["last"][last_offset] += n
    for cohort, k, active, sen in activity:
        cohorts[cohort]["active"][k] = active
        cohorts[cohort]["revenue"][k] = int(sen)
    cohort_rows = []
    for cohort in sorted(cohorts):
        row = cohorts[cohort]
        still = []
        running = 0
        for n in reversed(row["last"]):
            running += n
            still.append(running)
        still.reverse()
        cohort_rows.append(
            {
                "cohort": f"{cohort // 12:04d}-{cohort % 12 + 1:02d}",
                "size": row["size"],
                "retention": [a / row["size"] for a in row["active"]],
                "retention_unbounded": [s / row["size"] for s in still],
                "revenue_sen": row["revenue"],
            }
        )
    phases["cohorts"] = time.perf_counter() - mark

    mark = time.perf_counter()
    con.execute(
        f"""
        CREATE TEMP TABLE rfm AS
        WITH ranked AS (
            SELECT customer,
                   row_number() OVER (ORDER BY DATE '{as_of}' - last_day, customer) - 1 AS r_rank,
                   row_number() OVER (ORDER BY active_days, customer) - 1 AS f_rank,
                   row_number() OVER (ORDER BY revenue::DOUBLE / purchases, customer) - 1 AS m_rank,
                   count(*) OVER () - 1 AS span
            FROM customers
        ), scored AS (
            SELECT customer,
                   5 - ({bins('r_rank', 'span')}) AS r,
                   1 + ({bins('f_rank', 'span')}) AS f,
                   1 + ({bins('m_rank', 'span')}) AS m
            FROM ranked
        )
        SELECT customer, r, f, m, {SEGMENT} AS segment FROM scored
        """
    )
    segment_counts = dict(con.execute("SELECT segment, count(*) FROM rfm GROUP BY segment").fetchall())
    score_counts = con.execute(
        "SELECT sum(r), sum(f), sum(m), sum(r * 100 + f * 10 + m) FROM rfm"
    ).fetchone()
    phases["rfm"] = time.perf_counter() - mark
    total = time.perf_counter() - started

    seconds = {"total": total}
    if model is not None:
        mark = time.perf_counter()
        con.execute("ATTACH '" + scores_file.replace("'", "''") + "' AS peer")
        con.execute(
            f"""
            CREATE TABLE peer.customer_scores AS
            SELECT c.customer, DATE '{as_of}' - c.last_day AS recency_days,
                   c.active_days AS frequency_days, c.revenue // c.purchases AS monetary_minor,
                   s.r, s.f, s.m, s.segment, m.p_alive, m.expected_purchases_90d, m.clv_12m_minor
            FROM customers c JOIN rfm s USING (customer)
            LEFT JOIN read_parquet(?) m ON m.external_id = c.customer
            """,
            [model],
        )
        con.execute("DETACH peer")  # written and closed, as setia's commit is
        phases["store"] = time.perf_counter() - mark
        seconds["end_to_end"] = total + phases["store"]

    result = {
        "peer": f"DuckDB {duckdb.__version__}",
        "threads": int(threads),
        "as_of": as_of,
        "seconds": {**seconds, **phases},
        "totals": totals,
        "cohorts": cohort_rows,
        "rfm": {
            "segments": {name: int(segment_counts.get(name, 0)) for name in SEGMENTS},
            "score_sums": {
                "r": int(score_counts[0]),
                "f": int(score_counts[1]),
                "m": int(score_counts[2]),
                "rfm": int(score_counts[3]),
            },
        },
    }
    with open(out, "w") as file:
        json.dump(result, file)
    print(
        f"duckdb: {total:.2f} s ("
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
        + f"), {customers} customers, {purchases} purchases",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
