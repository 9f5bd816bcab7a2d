#!/usr/bin/env python3
"""Renders the results of `bench/run.sh` as a markdown table of ratios (bench/RESULTS.md).

    results.py --results FILE.jsonl --runs FILE.tsv --out RESULTS.md
               [--date TEXT] [--commit TEXT] [--machine TEXT]

--results: one JSON object per line, as each bench/<name>/run.sh appends them when
BENCH_RESULTS names a file, with exactly these keys:

    {"benchmark": "<name>", "measure": "<short text>", "unit": "<unit>",
     "setia": <number>, "peer": "<peer name>" | null, "peer_value": <number> | null,
     "better": "lower" | "higher", "goal": "<text>", "met": true | false | null}

--runs: one line per benchmark run, tab-separated: name, exit code, seconds.

The ratio is setia / peer when higher is better and peer / setia when lower is better, so a
ratio above 1 always means setia did better than its peer. Writes the markdown to --out and
prints it. Exits 1 when a result line is malformed or a benchmark failed or reported nothing
(the table still lists everything that could be read), 0 otherwise.
"""

import argparse
import json
import math
import sys

KEYS = ("benchmark", "measure", "unit", "setia", "peer", "peer_value", "better", "goal", "met")


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check(record):
    """The problems of one parsed result line, as texts (empty when it is well formed)."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems = []
    missing = [k for k in KEYS if k not in record]
    extra = sorted(k for k in record if k not in KEYS)
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unknown " + ", ".join(extra))
    for key in ("benchmark", "measure", "unit", "goal"):
        if key in record and not isinstance(record[key], str):
            problems.append(f"{key} is not a string")
    if "setia" in record and not is_number(record["setia"]):
        problems.append("setia is not a number")
    if "peer" in record and record["peer"] is not None and not isinstance(record["peer"], str):
        problems.append("peer is neither a string nor null")
    if "peer_value" in record and record["peer_value"] is not None and not is_number(record["peer_value"]):
        problems.append("peer_value is neither a number nor null")
    if record.get("peer") is None and record.get("peer_value") is not None:
        problems.append("peer_value without a peer")
    if "better" in record and record["better"] not in ("lower", "higher"):
        problems.append('better is neither "lower" nor "higher"')
    if "met" in record and record["met"] not in (True, False, None):
        problems.append("met is neither true, false nor null")
    return problems


def ratio(record):
    """setia's advantage over its peer: above 1 means setia is better; None without a peer.

    >>> ratio({"setia": 50.0, "peer_value": 100.0, "better": "higher"})
    0.5
    >>> ratio({"setia": 2.0, "peer_value": 10.0, "better": "lower"})
    5.0
    >>> ratio({"setia": 2.0, "peer_value": None, "better": "lower"}) is None
    True
    """
    setia, peer = record["setia"], record["peer_value"]
    if peer is None:
        return None
    top, bottom = (setia, peer) if record["better"] == "higher" else (peer, setia)
    if bottom == 0:
        return None
    return top / bottom


def number(value):
    """A figure for the table: thousands grouped, about three significant digits.

    >>> [number(x) for x in (69765.2, 1234.5, 9.414, 0.0934, 0.000123, 0, 3)]
    ['69,765', '1,234', '9.41', '0.0934', '0.000123', '0', '3']
    """
    if value == 0:
        return "0"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def read_results(path):
    """(records, problems): the well-formed lines, and a text for each malformed one."""
    records, problems = [], []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"results line {line_number}: not JSON ({e.msg})")
                continue
            found = check(record)
            if found:
                name = record.get("benchmark", "?") if isinstance(record, dict) else "?"
                problems.append(f"results line {line_number} ({name}): " + "; ".join(found))
            else:
                records.append(record)
    return records, problems


def read_runs(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                name, code, seconds = line.rstrip("\n").split("\t")
                runs.append((name, int(code), float(seconds)))
    return runs


def render(records, problems, runs, date, commit, machine):
    """(markdown, ok): the whole RESULTS.md, and whether every benchmark ran and reported."""
    out = ["# Benchmark results", ""]
    out.append(f"Run by `bench/run.sh` on {date}, commit `{commit}`, on {machine}.")
    out.append("")
    out.append("**Ratio**: setia ÷ peer when higher is better, peer ÷ setia when lower is "
               "better, so **above 1 means setia is better** than its peer; — where there is no "
               "peer. Each benchmark's README says what it measures and how.")
    out.append("")
    out.append("| benchmark | measure | better | setia | peer | ratio (> 1: setia better) | goal "
               "| met |")
    out.append("|---|---|---|--:|---|--:|---|---|")
    for r in records:
        unit = f" {r['unit']}" if r["unit"] else ""
        if r["peer"] is None:
            peer = "—"
        elif r["peer_value"] is None:
            peer = f"{cell(r['peer'])}: —"
        else:
            peer = f"{cell(r['peer'])}: {number(r['peer_value'])}{unit}"
        x = ratio(r)
        ratio_text = "—" if x is None else f"{number(x)}×"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        out.append(f"| {cell(r['benchmark'])} | {cell(r['measure'])} | {r['better']} "
                   f"| {number(r['setia'])}{unit} | {peer} | {ratio_text} | {cell(r['goal']) or '—'} "
                   f"| {met} |")
    out.append("")
    out.append("| benchmark run | exit code | seconds | measures |")
    out.append("|---|--:|--:|--:|")
    ok = not problems
    failed = []
    for name, code, seconds in runs:
        count = sum(1 for r in records if r["benchmark"] == name)
        out.append(f"| {cell(name)} | {code} | {seconds:,.0f} | {count} |")
        if code != 0:
            failed.append(f"{name} failed (exit code {code}); see its log above")
        elif count == 0:
            failed.append(f"{name} exited 0 but reported no measure to BENCH_RESULTS")
    ran = {name for name, _, _ in runs}
    for name in sorted({r["benchmark"] for r in records} - ran):
        problems.append(f"results for {name}, which was not run")
    if failed or problems:
        ok = False
        out.append("")
        out.append("## Problems")
        out.append("")
        out.extend(f"- {p}" for p in failed + problems)
    return "\n".join(out) + "\n", ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--date", default="(date unknown)")
    parser.add_argument("--commit", default="(commit unknown)")
    parser.add_argument("--machine", default="(machine unknown)")
    args = parser.parse_args(argv)
    records, problems = read_results(args.results)
    markdown, ok = render(records, problems, read_runs(args.runs), args.date, args.commit,
                          args.machine)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(markdown)
    sys.stdout.write(markdown)
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        import doctest

        failures, _ = doctest.testmod()
        sys.exit(1 if failures else 0)
    sys.exit(main())
