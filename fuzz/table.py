#!/usr/bin/env python3
"""Turns fuzz/run.sh's run records (results.tsv) into the per-target table in fuzz/README.md.

   python3 fuzz/table.py                      # print the table
   python3 fuzz/table.py --write              # replace it in fuzz/README.md
   python3 fuzz/table.py --since 2026-12-01   # only runs from that UTC date on (e.g. after a parser changed)
   python3 fuzz/table.py --write dwarf btf    # rewrite only these targets' rows

results.tsv has one line per target run: UTC date, the source build.sh built from, target, execs,
seconds, crashes (artifacts written), then, in lines run.sh wrote since it records them, the exit
status and the peak RSS in MiB; "?" where the log had no figure. Per target the table gives execs
and seconds summed over its runs, execs/s, the highest peak RSS, crashes, the exit statuses with
their counts, and the sources built from, in order of first run.

The table sits between the fuzz-table markers in fuzz/README.md. A row is rewritten only for a
target that has run records here (and is named, when targets are named); every other row is kept
as it is (figures from runs recorded on another machine, or a note row whose first cell is not a
target's name), and a target in fuzz/targets/ with neither a row nor a record gets one that says
"not yet run". Records on one machine may be only part of a target's runs: name the targets, or
use --since, rather than replace a row that sums more.
"""
import argparse
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- fuzz-table:begin -->", "<!-- fuzz-table:end -->"
HEADER = ["| target | execs | seconds | execs/s | peak RSS | crashes | exit status | built from |",
          "|---|---:|---:|---:|---:|---:|---|---|"]


def default_results():
    work = os.environ.get("WORK")
    if work:
        return Path(work) / "results.tsv"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "vmi-forensics/fuzz/results.tsv"


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def read_records(path, since):
    records = {}
    for line in path.read_text().splitlines():
        cells = line.split("\t")
        if len(cells) < 6 or (since and cells[0] < since):
            continue
        records.setdefault(cells[2], []).append(cells)
    return records


def row(target, runs):
    execs = [number(r[3]) for r in runs]
    seconds = [number(r[4]) for r in runs]
    known_execs = sum(e for e in execs if e is not None)
    known_seconds = sum(s for s in seconds if s is not None)
    unknown = sum(1 for e in execs if e is None)
    execs_cell = f"{int(known_execs):,}" + (f" (+ {unknown} run{'s' if unknown > 1 else ''} without figures)"
                                           if unknown else "")
    rate = f"{int(known_execs / known_seconds):,}" if known_seconds else "?"
    rss = [number(r[7]) for r in runs if len(r) > 7 and number(r[7]) is not None]
    rss_cell = f"{int(max(rss)):,} MiB" if rss else "not recorded"
    crashes = sum(int(number(r[5]) or 0) for r in runs)
    statuses = Counter(r[6] if len(r) > 6 else "not recorded" for r in runs)
    status_cell = ", ".join(code if n == 1 else f"{code} ×{n}" for code, n in statuses.items())
    sources = ", ".join(dict.fromkeys(r[1] for r in runs))
    cells = [target, execs_cell, f"{int(known_seconds):,}", rate, rss_cell, str(crashes), status_cell, sources]
    return "| " + " | ".join(cells) + " |"


def not_yet_run(target):
    return f"| {target} | not yet run | | | | | | |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=default_results())
    ap.add_argument("--readme", type=Path, default=ROOT / "fuzz/README.md")
    ap.add_argument("--since", help="only runs on or after this UTC date (YYYY-MM-DD or a full timestamp)")
    ap.add_argument("--write", action="store_true", help="replace the table in the README instead of printing it")
    ap.add_argument("only", nargs="*", metavar="target", help="rewrite only these targets' rows (default: all)")
    args = ap.parse_args()

    records = {}
    if args.results.is_file():
        records = read_records(args.results, args.since)
        if args.only:
            records = {t: runs for t, runs in records.items() if t in args.only}
    else:
        print(f"no run records at {args.results}: existing rows kept, new targets marked not yet run",
              file=sys.stderr)
    targets = sorted(p.stem for p in (ROOT / "fuzz/targets").glob("*.cpp"))

    text = args.readme.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{args.readme}: no {BEGIN} ... {END} markers around the table")
    before, rest = text.split(BEGIN, 1)
    old, after = rest.split(END, 1)
    rows = [line for line in old.splitlines() if line.startswith("|")][2:]  # past the header

    out, seen = [], set()
    for line in rows:
        first = line.split("|")[1].strip()
        seen.add(first)
        out.append(row(first, records[first]) if first in records else line)
    out += [row(t, records[t]) for t in records if t not in seen]
    out += [not_yet_run(t) for t in targets if t not in seen and t not in records]
    table = "\n".join(HEADER + out)

    if args.write:
        args.readme.write_text(before + BEGIN + "\n" + table + "\n" + END + after)
        print(f"{args.readme}: table of {len(out)} rows written")
    else:
        print(table)


if __name__ == "__main__":
    main()
