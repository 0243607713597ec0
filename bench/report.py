#!/usr/bin/env python3
"""Writes the `make bench` report: the summary table of every end-to-end
comparison (from the records bench/benchlib.py's result() appended), the
micro-benchmarks (Google Benchmark JSON files), and each script's own markdown
section. Called by bench/run.sh; see its header for the layout of WORK.

    report.py WORK --out FILE [--replace-in DOC]

With --replace-in, the report replaces the text between the two marker lines
of DOC (docs/benchmarks.md), or is inserted before DOC's first "## " heading
when the markers are missing; --out FILE gets the report alone in any case.
"""
import argparse
import json
import os
import pathlib
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import spread  # noqa: E402

BEGIN = "<!-- make bench: begin (written by bench/run.sh; edits between these lines are overwritten) -->"
END = "<!-- make bench: end -->"


def goal_met(goal, median):
    if not goal:
        return ""
    m = re.fullmatch(r"\s*(>=|<=)\s*([0-9.]+)\s*", goal)
    if not m:
        return "?"
    target = float(m.group(2))
    ok = median >= target if m.group(1) == ">=" else median <= target
    return "met" if ok else "**missed**"


def fmt(x):
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def summary(records):
    out = ["| measure | caches | tidemark (median) | peer (median) | ratio or value: min / median / max | rounds | goal | |",
           "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if not r["ratios"]:
            out.append(f"| {r['measure']} | {r['caches']} | {r['tidemark']} | {r['peer']} | not run | 0 | {r['goal'] or ''} | {r['note']} |")
            continue
        lo, med, hi = spread(r["ratios"])
        goal = (r["goal"] or "").replace(">=", "≥").replace("<=", "≤")
        verdict = goal_met(r["goal"], med)
        note = f" {r['note']}" if r["note"] else ""
        out.append(f"| {r['measure']} | {r['caches']} | {r['tidemark']} | {r['peer']} | "
                   f"{fmt(lo)} / {fmt(med)} / {fmt(hi)} | {len(r['ratios'])} | {goal} | {verdict}{note} |")
    return "\n".join(out)


STANDARD = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
            "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
            "bytes_per_second", "items_per_second", "label", "aggregate_name", "aggregate_unit"}


def micro_rows(data):
    rows = []
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        unit = b.get("time_unit", "ns")
        figures = []
        if "items_per_second" in b:
            figures.append(f"{b['items_per_second']:,.0f} items/s")
        if "bytes_per_second" in b:
            figures.append(f"{b['bytes_per_second'] / 1e6:,.1f} MB/s")
        figures += [f"{k} {fmt(v)}" for k, v in b.items() if k not in STANDARD and isinstance(v, (int, float))]
        name = b["name"] + (f" ({b['label']})" if b.get("label") else "")
        rows.append(f"| {name} | {b['real_time']:,.1f} {unit} | {b['cpu_time']:,.1f} {unit} | {', '.join(figures)} |")
    return rows


def micro(work):
    """One table per benchmark program; the layout study (journal_format_bench)
    folded away, it has a section of its own further down this file."""
    out = []
    for path in sorted(pathlib.Path(work, "micro").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            out += [f"{path.stem}: no JSON output (the program failed)", ""]
            continue
        table = ["| benchmark | real time | CPU time | figures |", "|---|---|---|---|"] + micro_rows(data)
        if path.stem == "journal_format_bench":
            out += ["<details><summary>journal_format_bench (layout and codec study, "
                    f"{len(table) - 2} rows)</summary>", "", *table, "", "</details>", ""]
        else:
            out += [f"**{path.stem}**", "", *table, ""]
    return "\n".join(out) if out else "(none run)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--out", required=True)
    ap.add_argument("--replace-in")
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    meta = json.loads((work / "meta.json").read_text())
    records = []
    results = work / "results.jsonl"
    if results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]

    parts = [BEGIN, "## `make bench` summary", "",
             f"Run {meta['started']} to {meta['ended']}, commit `{meta['commit']}`, "
             f"`{meta['command']}`{' (quick mode: tiny sizes, one round; the numbers mean nothing)' if meta['quick'] else ''}.",
             f"Machine: {meta['machine']}. Load average (1 min) {meta['load_start']} at the start, "
             f"{meta['load_end']} at the end.", "",
             "Each comparison runs tidemark and its peer back to back in every round, with the "
             "same client; the ratio is computed per round (tidemark / peer, so higher is better "
             "except where the goal says ≤) and reported as min / median / max over the rounds. "
             "A goal is checked against the median. Absolute measures list the value of each "
             "round instead of a ratio. *warm*: the data was in the page cache; *cold*: the "
             "page cache was dropped before each run.", "",
             summary(records), ""]
    failed = meta.get("failed") or []
    if failed:
        parts += [f"Scripts that failed in this run: {', '.join(failed)} (their rows are missing).", ""]
    parts += ["### Micro-benchmarks (Google Benchmark)", "", micro(work), ""]
    for name in meta.get("scripts", []):
        section = work / "sections" / f"{name}.md"
        if section.exists() and section.read_text().strip():
            parts += [f"### {name} (bench/{name}.sh)", "", section.read_text().strip(), ""]
    parts.append(END)
    report = "\n".join(parts) + "\n"
    pathlib.Path(a.out).write_text(report)

    if a.replace_in:
        doc_path = pathlib.Path(a.replace_in)
        doc = doc_path.read_text()
        if BEGIN in doc and END in doc:
            head, rest = doc.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            doc = head + report.rstrip("\n") + tail
        else:
            i = doc.find("\n## ")
            i = len(doc) if i < 0 else i + 1
            doc = doc[:i] + report + "\n" + doc[i:]
        doc_path.write_text(doc)


if __name__ == "__main__":
    main()
